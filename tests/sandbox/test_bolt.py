"""A real Bolt AsyncApp served on loopback, driven end to end by the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.slack import SlackEmulator
from tests.support.servers import serve_asgi

from .conftest import SECRET, TOKEN

CARD = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Invoice 42 needs approval"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "run-42",
                "style": "primary",
            }
        ],
    },
]


def build_app(emulator: SlackEmulator) -> AsyncApp:
    app = AsyncApp(
        token=TOKEN,
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=emulator.api_url),
    )

    @app.command("/flow")
    async def flow(ack: Any, command: dict[str, Any], say: Any) -> None:
        await ack(f"Starting {command['text']}")
        await say(text="Invoice 42 needs approval", blocks=CARD)

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text=f"Approved by <@{body['user']['id']}> ({body['actions'][0]['value']})",
            blocks=[],
        )

    @app.message("invoice")
    async def intake(message: dict[str, Any], say: Any) -> None:
        await say(text="Got it, routing", thread_ts=message["ts"])

    return app


@pytest.fixture
async def bolt_bot(emulator: SlackEmulator) -> AsyncIterator[str]:
    handler = AsyncSlackRequestHandler(build_app(emulator))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    server = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    async with serve_asgi(server) as url:
        emulator.request_url = f"{url}/slack/events"
        yield url
        await emulator.drain(timeout=2.0, cancel=True)


async def test_command_then_click(emulator: SlackEmulator, bolt_bot: str) -> None:
    result = await emulator.slash_command("alice", "#general", "invoice 42")
    assert result.ok, result
    assert emulator.ephemerals("alice")[0]["text"] == "Starting invoice 42"
    card = (await emulator.wait_for(lambda: emulator.messages("#general")))[0]
    assert card["blocks"][1]["elements"][0]["action_id"] == "approve"

    clicked = await emulator.click("carol", card["ts"], "approve")
    assert clicked.ok, clicked
    await emulator.wait_for(
        lambda: emulator.messages("#general")[0]["text"].startswith("Approved by"),
        message="the card was never updated",
    )
    updated = emulator.messages("#general")[0]
    assert updated["text"] == f"Approved by <@{emulator.user_id('carol')}> (run-42)"
    assert updated["ts"] == card["ts"]
    assert [c.method for c in emulator.api_calls() if c.ok][:3] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
    ]


async def test_message_event_answered_in_thread_without_loops(
    emulator: SlackEmulator, bolt_bot: str
) -> None:
    posted = await emulator.user_posts("bob", "#ap-inbox", "new invoice from ACME")
    thread = await emulator.wait_for(
        lambda: emulator.thread("#ap-inbox", posted["ts"])[1:], message="no threaded answer"
    )
    assert thread[0]["text"] == "Got it, routing"
    await emulator.drain()
    # The bot's own reply came back to it as an event (as in Slack) and was ignored by Bolt.
    events = [d.payload["event"] for d in emulator.deliveries("event_callback")]
    assert any(e.get("bot_id") == emulator.workspace.bot_id for e in events)
    assert len(emulator.api_calls("chat.postMessage")) == 1
