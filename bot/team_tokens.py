"""Which bot token a Web API call uses when the app is installed in many workspaces.

The engine's chat (``bot/notifier.SlackChat``) serves every workspace; each call asks
``TeamTokens.token()`` for the token of the workspace whose work the task is doing
(``workflows.ports.CHAT_WORKSPACE``: the run's for a job, the request's for a listener,
set by ``workspace_scope`` below). The token comes from the installation store; one that
expires within ``minutes_before_expiration`` is refreshed first with slack_sdk's
``AsyncTokenRotator`` (the rotator Bolt's own authorize uses) and the new one saved, under
a per-workspace lock so one process refreshes once. A workspace without an installation
(never installed, or uninstalled since) is a ``ChatError`` that is not retried.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator

from bot.installations import DatabaseInstallationStore, installation_key
from workflows.ports import CHAT_WORKSPACE, ChatError, ChatWorkspace
from workflows.team_scope import READ_SCOPE, TeamScope

CACHE_SECONDS = 10.0
"""A token is read from the database at most this often per workspace and process; an
uninstall is seen within it (Slack refuses the revoked token meanwhile)."""


FOREVER = 10**7
"""Minutes: a refresh the rotator makes whatever the token's recorded expiry."""


class TeamTokens:
    def __init__(
        self,
        installations: DatabaseInstallationStore,
        rotator: AsyncTokenRotator,
        *,
        minutes_before_expiration: int = 120,
    ) -> None:
        self.installations = installations
        self.rotator = rotator
        self.minutes_before_expiration = minutes_before_expiration
        self._cache: dict[str, tuple[Bot, float]] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def token(self, *, refresh: bool = False) -> str:
        workspace = CHAT_WORKSPACE.get()
        if workspace is None or not workspace.team_id:
            raise ChatError(
                "this run belongs to no Slack workspace (started by a webhook or schedule); "
                "with several workspaces installed, only runs started in Slack have a thread",
                retryable=False,
            )
        return (await self.bot(workspace, refresh=refresh)).bot_token or ""

    async def bot(self, workspace: ChatWorkspace, *, refresh: bool = False) -> Bot:
        """The workspace's bot, its token refreshed when expiring (or now, ``refresh``)."""
        key = installation_key(workspace.enterprise_id, workspace.team_id, False)
        cached = None if refresh else self._cache.get(key)
        fresh = cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS
        if cached is not None and fresh and not self._expiring(cached[0]):
            return cached[0]
        async with self._locks[key]:
            bot = await self.installations.async_find_bot(
                enterprise_id=workspace.enterprise_id, team_id=workspace.team_id
            )
            if bot is None:
                self._cache.pop(key, None)
                raise ChatError(
                    f"Switchboard is not installed in Slack workspace {workspace.team_id}",
                    retryable=False,
                )
            try:
                # Slack said expired: refresh whatever the stored expiry says.
                minutes = FOREVER if refresh else self.minutes_before_expiration
                rotated = await self.rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=minutes
                )
            except SlackTokenRotationError as exc:
                raise ChatError(f"token refresh failed: {exc}", retryable=True) from None
            if rotated is not None:
                await self.installations.async_save_bot(rotated)
                bot = rotated
            self._cache[key] = (bot, time.monotonic())
            return bot

    def forget(self, workspace: ChatWorkspace) -> None:
        """Drop a cached token (the workspace uninstalled the app)."""
        self._cache.pop(installation_key(workspace.enterprise_id, workspace.team_id, False), None)

    def _expiring(self, bot: Bot) -> bool:
        expires = bot.bot_token_expires_at
        return expires is not None and expires <= time.time() + self.minutes_before_expiration * 60


def workspace_scope(*, unassigned: bool) -> Callable[..., Awaitable[None]]:
    """Bolt middleware: a request's work (its listener and what that spawns) is for the
    request's workspace (Bolt's ``context.team_id``): chat calls use its token, and every read
    sees its runs only (``workflows/team_scope.py``: where Slack's team scope is enforced).
    ``unassigned``: runs of no workspace stay visible (single-workspace mode)."""

    async def middleware(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        # Set, not wrapped around next(): Bolt runs the listener after the middleware chain
        # returns, in the same task (one per request), which keeps these values.
        team = context.team_id
        CHAT_WORKSPACE.set(ChatWorkspace(team, context.enterprise_id) if team else None)
        # No team (a payload Bolt found none in): nothing of any workspace is visible.
        READ_SCOPE.set(TeamScope(team or "-", context.enterprise_id, unassigned=unassigned))
        await next()

    return middleware
