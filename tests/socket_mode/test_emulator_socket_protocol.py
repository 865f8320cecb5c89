"""The emulator's Socket Mode as Slack documents it, driven by a bare WebSocket client.

No bot here: the test is the app, so it decides when (and whether) to ack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest

from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.servers import serve_asgi

APP_TOKEN = "xapp-1-A0SWITCHBD-1-protocol"
BOT_TOKEN = "xoxb-protocol-bot"


@dataclass
class Slack:
    emulator: SlackEmulator
    url: str
    session: aiohttp.ClientSession

    async def open_url(self, token: str = APP_TOKEN) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.url}/api/apps.connections.open",
                headers={"Authorization": f"Bearer {token}"} if token else {},
            )
        return dict(response.json())

    async def link(self) -> aiohttp.ClientWebSocketResponse:
        opened = await self.open_url()
        return await self.session.ws_connect(opened["url"])


@pytest.fixture
async def slack() -> AsyncIterator[Slack]:
    emulator = SlackEmulator("secret", BOT_TOKEN, WorkspaceSeed.demo(), app_token=APP_TOKEN)
    async with serve_asgi(emulator.asgi_app) as url, aiohttp.ClientSession() as session:
        emulator.base_url = url
        yield Slack(emulator, url, session)
        await emulator.aclose()


async def received(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return dict(json.loads(message.data))


async def test_connections_open_gives_a_one_use_ws_url_for_the_app_token(slack: Slack) -> None:
    opened = await slack.open_url()
    assert opened["ok"] is True
    assert opened["url"].startswith("ws://127.0.0.1:") and "ticket=" in opened["url"]
    ws = await slack.session.ws_connect(opened["url"])
    hello = await received(ws)
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"]["app_id"] == slack.emulator.workspace.app_id
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await slack.session.ws_connect(opened["url"])
    assert refused.value.status == 401, "a ticket opens one link only"
    await ws.close()


@pytest.mark.parametrize(
    ("token", "error"),
    [("", "not_authed"), (BOT_TOKEN, "not_allowed_token_type"), ("xapp-wrong", "invalid_auth")],
)
async def test_connections_open_refuses_other_tokens(slack: Slack, token: str, error: str) -> None:
    assert await slack.open_url(token) == {"ok": False, "error": error}
    assert slack.emulator.socket.enabled is False


async def test_slash_command_envelope_and_its_ack_payload_is_the_answer(slack: Slack) -> None:
    ws = await slack.link()
    await received(ws)  # hello
    sent = asyncio.create_task(slack.emulator.slash_command("alice", "general", "hi"))
    envelope = await received(ws)
    assert envelope["type"] == "slash_commands"
    assert envelope["accepts_response_payload"] is True
    assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
    assert envelope["payload"]["text"] == "hi" and envelope["payload"]["command"] == "/flow"
    answer = {"response_type": "ephemeral", "text": "Got it"}
    await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": answer}))
    result = await sent
    assert result.ok and result.outcome == "responded"
    assert [e["text"] for e in slack.emulator.ephemerals("alice")] == ["Got it"]
    await ws.close()


async def test_an_unacked_envelope_is_redelivered_to_the_next_link(slack: Slack) -> None:
    first = await slack.link()
    await received(first)
    sent = asyncio.create_task(slack.emulator.slash_command("alice", "general", "again"))
    envelope = await received(first)
    await first.close()  # the link dies before the app acks
    second = await slack.link()
    hello = await received(second)
    assert hello["num_connections"] == 1
    again = await received(second)
    assert again["envelope_id"] == envelope["envelope_id"]
    assert again["payload"] == envelope["payload"]
    assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
    await second.send_str(json.dumps({"envelope_id": again["envelope_id"]}))
    result = await sent
    assert result.ok and result.body == ""
    await second.close()


async def test_refresh_requested_retires_the_link_then_closes_it(slack: Slack) -> None:
    slack.emulator.socket.disconnect_grace = 1.0
    old = await slack.link()
    await received(old)
    await slack.emulator.socket.disconnect("refresh_requested")
    notice = await received(old)
    assert (notice["type"], notice["reason"]) == ("disconnect", "refresh_requested")
    new = await slack.link()
    await received(new)
    sent = asyncio.create_task(slack.emulator.slash_command("alice", "general", "after"))
    envelope = await received(new)  # not to the retiring link
    await new.send_str(json.dumps({"envelope_id": envelope["envelope_id"]}))
    assert (await sent).ok
    closing = await asyncio.wait_for(old.receive(), timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await new.close()


async def test_an_ack_is_accepted_on_any_of_the_apps_links(slack: Slack) -> None:
    one, two = await slack.link(), await slack.link()
    await received(one)
    assert (await received(two))["num_connections"] == 2
    sent = asyncio.create_task(slack.emulator.slash_command("alice", "general", "x"))
    done, _ = await asyncio.wait(
        {asyncio.ensure_future(received(one)), asyncio.ensure_future(received(two))},
        return_when=asyncio.FIRST_COMPLETED,
    )
    envelope = done.pop().result()
    await two.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {}}))
    await one.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {}}))
    assert (await sent).ok
    await one.close()
    await two.close()


async def test_link_disabled_closes_the_links_and_requests_go_to_the_request_url(
    slack: Slack,
) -> None:
    ws = await slack.link()
    await received(ws)
    await slack.emulator.socket.disconnect("link_disabled")
    notice = await received(ws)
    assert notice["reason"] == "link_disabled"
    assert slack.emulator.socket.enabled is False
    assert await slack.open_url() == {"ok": False, "error": "socket_mode_disabled"}
    with pytest.raises(RuntimeError, match="request_url"):
        await slack.emulator.slash_command("alice", "general", "x")
