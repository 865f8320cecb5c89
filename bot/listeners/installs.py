"""The app leaves a workspace: ``tokens_revoked`` and ``app_uninstalled`` (either order).

With many workspaces, Bolt's token-revocation listeners delete the workspace's
installation (``bot/installations.py``), so later requests from that team find no token
and Bolt refuses them, and the engine's chat says the workspace is not installed; the
cached token is dropped too (``TeamTokens.forget``). Runs already recorded stay, like any
data (retention applies). With one workspace (``SLACK_BOT_TOKEN``) there is nothing to
delete: the token stops working, which is logged once per event.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners

from bot.oauth import MultiWorkspace
from workflows.ports import ChatWorkspace

log = logging.getLogger(__name__)


class InstallListeners:
    def __init__(self, multi: MultiWorkspace | None) -> None:
        self.multi = multi
        self.builtins = (
            AsyncTokenRevocationListeners(multi.installations) if multi is not None else None
        )

    async def on_tokens_revoked(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        if self.builtins is None or self.multi is None:
            log.warning("Slack revoked this app's tokens", extra={"team_id": context.team_id})
            return
        await self.builtins.handle_tokens_revoked_events(event, context)
        self.multi.tokens.forget(ChatWorkspace(context.team_id, context.enterprise_id))

    async def on_app_uninstalled(self, context: AsyncBoltContext) -> None:
        if self.builtins is None or self.multi is None:
            log.warning("the app was uninstalled", extra={"team_id": context.team_id})
            return
        await self.builtins.handle_app_uninstalled_events(context)
        self.multi.tokens.forget(ChatWorkspace(context.team_id, context.enterprise_id))
