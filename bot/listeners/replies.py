"""How a card's listeners answer the person who clicked: privately, where they clicked.

A click on a card in a channel or DM is answered with an ephemeral message (the
click's ``response_url``). A click in App Home has no conversation to answer in, so the
tab is republished to show how things stand now (a decided approval gone, a question
answered). Approvals, questions and routing cards all answer this one way.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.listeners.home import HomeTab


async def tell(respond: AsyncRespond, text: str) -> None:
    """One ephemeral line to the clicker; the card itself stays as it is."""
    await respond(text=text, response_type="ephemeral", replace_original=False)


def in_app_home(body: dict[str, Any]) -> bool:
    return bool(body.get("container", {}).get("type") == "view")


class Replies:
    def __init__(self, background: Background, home: HomeTab | None = None) -> None:
        self.background = background
        self.home = home

    def answer(
        self,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
        text: str,
        *,
        name: str,
    ) -> None:
        """``text`` to the clicker after the ack; in App Home, the refreshed tab instead."""
        if self.home is not None and in_app_home(body):
            self.home.refresh(client, str(body["user"]["id"]))
            return
        self.background.spawn(tell(respond, text), name)

    def say(self, respond: AsyncRespond, text: str, *, name: str) -> None:
        """``text`` to the clicker after the ack, wherever they clicked (a modal's refusal)."""
        self.background.spawn(tell(respond, text), name)
