"""Who the bot is in the workspace: ``auth.test`` once at start-up, cached for every request.

Bolt's default single-workspace authorisation calls ``auth.test`` on the first
request, which would put a Web API call on the ack path. We call it when the
process starts (readiness reports whether it succeeded) and hand Bolt the
cached answer through its ``authorize`` hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotIdentity:
    team_id: str
    bot_id: str
    bot_user_id: str
    enterprise_id: str | None = None


class IdentityCache:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._identity: BotIdentity | None = None
        self._lock = asyncio.Lock()
        self.error: str | None = None

    @property
    def identity(self) -> BotIdentity | None:
        return self._identity

    async def load(self) -> BotIdentity | None:
        """``auth.test``, once; returns None (and records why) when Slack refuses or is away."""
        async with self._lock:
            if self._identity is not None:
                return self._identity
            try:
                response = await self._client.auth_test()
            except SlackApiError as exc:
                self.error = f"auth.test: {exc.response.get('error', 'failed')}"
                log.warning("Slack auth.test failed", extra={"error": self.error})
                return None
            except (OSError, TimeoutError) as exc:
                self.error = f"auth.test: {type(exc).__name__}"
                log.warning("Slack unreachable", extra={"error": self.error})
                return None
            self._identity = BotIdentity(
                team_id=str(response.get("team_id", "")),
                bot_id=str(response.get("bot_id", "")),
                bot_user_id=str(response.get("user_id", "")),
                enterprise_id=response.get("enterprise_id"),
            )
            self.error = None
            return self._identity

    def authorizer(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """Bolt's ``authorize`` hook (a plain function: Bolt passes arguments by name)."""

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            identity = self._identity or await self.load()
            if identity is None:
                raise RuntimeError(self.error or "Slack identity unknown")
            return AuthorizeResult(
                enterprise_id=identity.enterprise_id,
                team_id=identity.team_id,
                bot_id=identity.bot_id,
                bot_user_id=identity.bot_user_id,
                bot_token=self._client.token,
            )

        return authorize
