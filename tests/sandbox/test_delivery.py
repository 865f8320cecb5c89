"""Signed delivery to a bot: payload shapes, signatures, deadline, retries, responses."""

from __future__ import annotations

import json
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

from .conftest import Receiver, make_emulator

BUTTONS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Invoice 42"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "run-1",
                "style": "primary",
            },
            {
                "type": "static_select",
                "action_id": "route",
                "placeholder": {"type": "plain_text", "text": "Route"},
                "options": [
                    {"text": {"type": "plain_text", "text": "Finance"}, "value": "finance"},
                    {"text": {"type": "plain_text", "text": "Legal"}, "value": "legal"},
                ],
            },
        ],
    },
]


async def test_slash_command_is_signed_and_shaped(
    emulator: SlackEmulator, receiver: Receiver
) -> None:
    receiver.answer(body={"text": "Working on it"})
    result = await emulator.slash_command("alice", "#general", "start invoice 42")
    assert result.ok and result.status == 200 and result.elapsed_ms > 0
    req = receiver.requests[0]
    assert req.signature_ok
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    form = req.form
    assert form["command"] == "/flow" and form["text"] == "start invoice 42"
    assert form["user_id"] == emulator.user_id("alice") and form["user_name"] == "alice"
    assert form["channel_id"] == emulator.channel_id("general")
    assert form["channel_name"] == "general"
    assert form["team_id"] == emulator.workspace.team_id
    assert form["api_app_id"] == emulator.workspace.app_id
    assert form["response_url"].startswith(f"{emulator.base_url}/response/")
    assert form["trigger_id"]
    # The ack body is shown to the user privately, as Slack does.
    assert [e["text"] for e in emulator.ephemerals("alice", "#general")] == ["Working on it"]


async def test_response_url(emulator: SlackEmulator, receiver: Receiver) -> None:
    await emulator.slash_command("alice", "#general", "list")
    url = receiver.requests[0].form["response_url"]
    async with httpx.AsyncClient() as http:
        r1 = await http.post(url, json={"text": "private answer"})
        r2 = await http.post(url, json={"text": "for everyone", "response_type": "in_channel"})
        assert r1.status_code == r2.status_code == 200
        bad = await http.post(url, json={"blocks": [{"type": "nope"}]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_blocks"
    assert [e["text"] for e in emulator.ephemerals("alice")] == ["private answer"]
    assert [m["text"] for m in emulator.messages("#general")] == ["for everyone"]


async def test_block_actions_and_replace_original(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    card = await client.chat_postMessage(channel="#general", text="card", blocks=BUTTONS)
    await emulator.drain()
    receiver.requests.clear()
    result = await emulator.click("carol", card["ts"], "approve")
    assert result.ok
    payload = receiver.requests[0].payload
    assert receiver.requests[0].signature_ok
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == emulator.user_id("carol")
    assert payload["container"] == {
        "type": "message",
        "message_ts": card["ts"],
        "channel_id": card["channel"],
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == card["ts"] and payload["message"]["blocks"]
    (action,) = payload["actions"]
    assert action["action_id"] == "approve" and action["block_id"] == "decide"
    assert action["value"] == "run-1" and action["type"] == "button"
    assert action["action_ts"] and payload["trigger_id"]

    await emulator.click("carol", card["ts"], "route", "legal")
    select = receiver.requests[1].payload["actions"][0]
    assert select["selected_option"]["value"] == "legal"

    async with httpx.AsyncClient() as http:
        await http.post(
            payload["response_url"], json={"replace_original": True, "text": "Approved by Carol"}
        )
    assert emulator.messages("#general")[0]["text"] == "Approved by Carol"
    assert emulator.messages("#general")[0]["ts"] == card["ts"]


async def test_events_envelope_and_bot_membership(
    emulator: SlackEmulator, receiver: Receiver
) -> None:
    posted = await emulator.user_posts(
        "bob", "#general", f"hey <@{emulator.workspace.bot_user_id}> invoice"
    )
    bodies = [r.payload for r in receiver.requests]
    assert [b["event"]["type"] for b in bodies] == ["message", "app_mention"]
    env = bodies[0]
    assert env["type"] == "event_callback" and env["event_id"].startswith("Ev")
    assert env["authorizations"][0]["user_id"] == emulator.workspace.bot_user_id
    assert env["event"]["channel_type"] == "channel"
    assert env["event"]["ts"] == posted["ts"] and env["event"]["user"] == emulator.user_id("bob")
    assert all(r.signature_ok for r in receiver.requests)
    # The bot is not in #random, so it hears nothing from there.
    emulator.channel("random").members.append(emulator.user_id("bob"))
    await emulator.user_posts("bob", "#random", "quiet")
    assert len(receiver.requests) == 2

    await emulator.add_reaction("alice", "#general", posted["ts"], "white_check_mark")
    reaction = receiver.requests[-1].payload["event"]
    assert reaction["type"] == "reaction_added" and reaction["item"]["ts"] == posted["ts"]

    await emulator.open_home("alice")
    home = receiver.requests[-1].payload["event"]
    assert home["type"] == "app_home_opened" and home["tab"] == "home"


async def test_event_retries_after_failures(emulator: SlackEmulator, receiver: Receiver) -> None:
    receiver.answer(status=500)
    receiver.answer(status=200, delay=1.5)  # past the (1 s in tests) deadline
    first = await emulator.send_event({"type": "app_home_opened", "user": "U1", "tab": "home"})
    assert first.status == 500 and not first.ok and first.error == "http_error"
    await emulator.wait_for(lambda: len(emulator.deliveries("event_callback")) >= 3, timeout=5)
    attempts = emulator.deliveries("event_callback")
    assert attempts[1].timed_out and attempts[2].ok
    await emulator.wait_for(lambda: len(receiver.requests) >= 3)
    retry_headers = [
        (r.headers.get("x-slack-retry-num"), r.headers.get("x-slack-retry-reason"))
        for r in receiver.requests
    ]
    assert retry_headers == [(None, None), ("1", "http_error"), ("2", "http_timeout")]
    assert len({r.payload["event_id"] for r in receiver.requests}) == 1


async def test_manual_retries_and_no_retry_header(receiver: Receiver) -> None:
    from tests.support.servers import serve_asgi

    emu = make_emulator(event_retry_delays=None)
    emu.request_url = receiver.url
    async with serve_asgi(emu.asgi_app) as url:
        emu.base_url = url
        receiver.answer(status=503)
        result = await emu.send_event({"type": "app_home_opened", "user": "U1", "tab": "home"})
        assert emu.failed_events() == [result.event_id]
        assert len(receiver.requests) == 1  # nothing happens until the test asks
        assert result.event_id is not None
        retry = await emu.retry_event(result.event_id)
        assert retry.ok and retry.retry_num == 1 and emu.failed_events() == []

        receiver.answer(500, "", 0.0, **{"X-Slack-No-Retry": "1"})
        await emu.send_event({"type": "app_home_opened", "user": "U1", "tab": "home"})
        assert emu.failed_events() == []
        await emu.aclose()


async def test_slow_command_is_a_timeout(emulator: SlackEmulator, receiver: Receiver) -> None:
    receiver.answer(body={"text": "too late"}, delay=1.3)
    result = await emulator.slash_command("alice", "#general", "help")
    assert result.timed_out and not result.ok and result.outcome == "operation_timeout"
    texts = [e["text"] for e in emulator.ephemerals("alice")]
    assert texts == ['/flow failed with the error "operation_timeout"']


async def test_url_verification(emulator: SlackEmulator, receiver: Receiver) -> None:
    receiver.answer(body={"challenge": "abc"})
    result = await emulator.verify_url("abc")
    assert result.outcome == "verified"
    assert json.loads(receiver.requests[0].body)["type"] == "url_verification"


async def test_message_shortcut(emulator: SlackEmulator, receiver: Receiver) -> None:
    msg = await emulator.user_posts("dave", "#ap-inbox", "invoice attached")
    receiver.requests.clear()
    await emulator.message_shortcut("dave", "#ap-inbox", msg["ts"])
    payload = receiver.requests[0].payload
    assert payload["type"] == "message_action"
    assert payload["callback_id"] == "send_to_switchboard"
    assert payload["message"]["text"] == "invoice attached"
    assert payload["channel"]["id"] == msg["channel"]
