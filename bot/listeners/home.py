"""App Home: published when someone opens it, and again for a person after they decide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from workflows.inbox import open_requests, pending_approvals
from workflows.language.workflow import Workflow


def catalogue(workflows: Mapping[str, Workflow]) -> list[dict[str, str]]:
    return [
        {
            "name": wf.name,
            "title": wf.title,
            "description": wf.description,
            "command": (wf.commands or [wf.name])[0],
        }
        for wf in sorted(workflows.values(), key=lambda wf: wf.name)
    ]


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
        data = {
            "pending": await pending_approvals(self.deps.store, user_id),
            "requests": await open_requests(self.deps.store, user_id),
            "workflows": catalogue(self.deps.workflows),
        }
        view = self.deps.renderer.render_view("app_home", data)
        await client.views_publish(user_id=user_id, view=view)
