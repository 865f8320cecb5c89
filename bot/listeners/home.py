"""App Home: published when someone opens it, and again for a person after they decide.

The engine publishes it too when a run ends (``workflows/presence.py`` through the
chat port), from the same data (``workflows.inbox.home_data``).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from workflows.inbox import catalogue, home_data

__all__ = ["HomeTab", "catalogue"]


class HomeTab:
    def __init__(self, deps: BotDeps, background: Background) -> None:
        self.deps = deps
        self.background = background

    async def on_opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            self.refresh(client, str(event["user"]))

    def refresh(self, client: AsyncWebClient, user_id: str) -> None:
        """Publish ``user_id``'s Home after the ack (a Web API call never sits on the ack path)."""
        self.background.spawn(self._publish(client, user_id), "publish-home")

    async def _publish(self, client: AsyncWebClient, user_id: str) -> None:
        data = await home_data(self.deps.store, user_id, self.deps.workflows)
        view = self.deps.renderer.render_view("app_home", data)
        await client.views_publish(user_id=user_id, view=view)
