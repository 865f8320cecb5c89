"""The sandbox page's HTTP surface, through real HTTP: the page and its files, the
state JSON, live server-sent events, and acting as people (every action reaches
the bot, or a stand-in for it, as a signed Slack request)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette

from sandbox.demo import WALKTHROUGH, walkthrough_text
from sandbox.slack import SlackEmulator
from sandbox.slack.page import SandboxPage
from tests.support.servers import serve_asgi

from .conftest import Receiver
from .page_harness import RunningDemo, channel_messages, running_demo, thread_replies


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    async with running_demo(tmp_path) as demo:
        yield demo


async def test_page_and_its_files_are_served_with_a_strict_policy(running: RunningDemo) -> None:
    page = await running.http.get("/")
    assert page.status_code == 200
    assert "/sandbox/static/app.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("app.js", "javascript"), ("style.css", "css"), ("mrkdwn.js", "javascript")):
        static = await running.http.get(f"/sandbox/static/{name}")
        assert static.status_code == 200
        assert kind in static.headers["content-type"]
    assert (await running.http.get("/healthz")).json() == {"status": "ok"}  # the bot, same port


async def test_state_is_the_demo_workspace_as_one_user_sees_it(running: RunningDemo) -> None:
    state = await running.state("alice")
    assert state["me"]["name"] == "alice"
    assert state["me"]["role"] == "requester"
    names = {c["name"] for c in state["channels"] if c["kind"] == "channel"}
    assert {"general", "requests", "finance-approvals", "it-help"} <= names
    assert "triage" not in {c["name"] for c in state["channels"] if c["is_member"]}
    assert any(g["handle"] == "finance-leads" for g in state["usergroups"])
    assert state["walkthrough"][0]["text"] == "/flow hello world"
    assert state["app_dm"].startswith("D")
    dana = await running.state("dana")
    assert dana["me"]["role"] == "finance approver"
    missing = await running.http.get("/sandbox/state", params={"user": "mallory"})
    assert missing.status_code == 404


async def test_flow_hello_typed_as_alice_threads_the_run(running: RunningDemo) -> None:
    result = await running.act("command", user="alice", channel="general", text="/flow hello world")
    assert result["ok"], result
    assert result["status"] == 200
    assert result["outcome"] == "responded"

    def run_thread(state: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        messages = channel_messages(state, "general")
        root = next((m for m in messages if "started hello" in m["text"]), None)
        if root is None:
            return None
        replies = thread_replies(messages, root["ts"])
        return (root, replies) if len(replies) >= 2 else None  # the run card, the reply

    root, replies = await running.wait_state("alice", run_thread, what="the run's thread")
    alice_id = running.slack.user_id("alice")
    assert f"<@{alice_id}>" in root["text"]
    assert root["user"] == running.slack.workspace.bot_user_id
    assert any("Hello, world!" in r["text"] for r in replies)

    alice = await running.state("alice")
    assert any("Started" in e["text"] for e in alice["ephemerals"])  # the ack, only for Alice
    bob = await running.state("bob")
    assert not any("Started" in e["text"] for e in bob["ephemerals"])
    assert channel_messages(bob, "general")  # but the thread is public

    log = (await running.http.get("/sandbox/devlog")).json()["entries"]
    command = next(e for e in log if e["title"].startswith("slash_command /flow hello"))
    assert command["direction"] == "Slack → app"
    assert command["request_headers"]["X-Slack-Signature"].startswith("v0=")
    assert command["request"]["user_id"] == alice_id
    assert any(e["title"] == "chat.postMessage" for e in log)
    assert all("token" not in e["request"] for e in log if e["kind"] == "web_api")


async def test_a_click_as_another_user_reaches_the_bot_signed(running: RunningDemo) -> None:
    # A card with a button, posted the way the bot posts (Web API with the bot token).
    client = AsyncWebClient(token=running.slack.bot_token, base_url=running.slack.api_url)
    posted = await client.chat_postMessage(
        channel="#finance-approvals",
        text="Approve?",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Invoice* for 40 EUR"}},
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "sandbox_probe",
                        "style": "primary",
                        "value": "yes",
                        "text": {"type": "plain_text", "text": "Approve"},
                    }
                ],
            },
        ],
    )
    dana_id = running.slack.user_id("dana")
    result = await running.act(
        "click",
        user="dana",
        channel=posted["channel"],
        ts=posted["ts"],
        action_id="sandbox_probe",
        block_id="decide",
    )
    assert result["ok"], result
    assert result["delivered"]
    assert result["acked"] == (result["status"] == 200)
    # Bolt answers 401 to a bad signature; 404 means it verified it and has no listener.
    assert result["status"] in (200, 404)
    log = (await running.http.get("/sandbox/devlog")).json()["entries"]
    click = next(e for e in reversed(log) if e["title"] == "block_actions")
    assert click["request"]["user"]["id"] == dana_id
    assert click["request"]["actions"][0]["value"] == "yes"
    assert click["request"]["container"]["message_ts"] == posted["ts"]


async def test_people_cannot_act_where_they_could_not(running: RunningDemo) -> None:
    refused = await running.act("message", user="alice", channel="triage", text="hi")
    assert refused["http_status"] == 400
    assert "not a member" in refused["error"]
    unknown = await running.act("teleport", user="alice")
    assert unknown["http_status"] == 404
    bad = await running.act("command", user="alice", channel="general", text="flow hello")
    assert bad["http_status"] == 400


async def test_messages_reactions_and_shortcut_go_through_the_emulator(
    running: RunningDemo,
) -> None:
    posted = await running.act("message", user="bob", channel="it-help", text="laptop broke")
    assert posted["ok"]
    reacted = await running.act(
        "react", user="carol", channel="it-help", ts=posted["ts"], name="eyes"
    )
    assert reacted["ok"], reacted
    state = await running.state("alice")
    message = next(m for m in channel_messages(state, "it-help") if m["ts"] == posted["ts"])
    assert message["reactions"] == [
        {"name": "eyes", "users": [running.slack.user_id("carol")], "count": 1}
    ]
    again = await running.act(
        "react", user="carol", channel="it-help", ts=posted["ts"], name="eyes"
    )
    assert again["error"] == "already_reacted"
    shortcut = await running.act("shortcut", user="bob", channel="it-help", ts=posted["ts"])
    assert shortcut["delivered"]
    log = (await running.http.get("/sandbox/devlog")).json()["entries"]
    assert any(
        e["title"] == "message_action" and e["request"]["callback_id"] == "send_to_switchboard"
        for e in log
    )
    assert any(e["title"] == "event reaction_added" for e in log)


async def test_server_sent_events_announce_each_change(running: RunningDemo) -> None:
    async with running.http.stream("GET", "/sandbox/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_change() -> int:
            async for line in lines:
                if line.startswith("data:"):
                    return int(json.loads(line[5:])["version"])
            raise AssertionError("stream ended")

        first = await asyncio.wait_for(next_change(), 5)
        await running.act("message", user="alice", channel="general", text="ping")
        second = await asyncio.wait_for(next_change(), 5)
        assert second > first


def test_walkthrough_is_data_and_names_the_first_thing_to_try() -> None:
    text = walkthrough_text("http://127.0.0.1:3000/")
    assert "http://127.0.0.1:3000/" in text
    assert "/flow hello world" in text
    assert WALKTHROUGH[0].channel == "general"
    assert all(tip.user and tip.text.startswith("/") for tip in WALKTHROUGH)


# ---------------------------------------------------------------- modals, with a stand-in bot


@contextlib.asynccontextmanager
async def page_for(emulator: SlackEmulator) -> AsyncIterator[httpx.AsyncClient]:
    page = SandboxPage(emulator)
    async with (
        serve_asgi(Starlette(routes=page.routes)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        try:
            yield http
        finally:
            page.close()


async def test_modal_errors_show_under_the_field_and_close_closes(
    emulator: SlackEmulator, receiver: Receiver, client: AsyncWebClient
) -> None:
    async with page_for(emulator) as http:
        await http.post(
            "/sandbox/act/command", json={"user": "alice", "channel": "general", "text": "/flow x"}
        )
        trigger = receiver.requests[-1].form["trigger_id"]
        opened = await client.views_open(
            trigger_id=trigger,
            view={
                "type": "modal",
                "callback_id": "reject",
                "notify_on_close": True,
                "title": {"type": "plain_text", "text": "Reject"},
                "submit": {"type": "plain_text", "text": "Send"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "reason",
                        "label": {"type": "plain_text", "text": "Reason"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    },
                    {
                        "type": "input",
                        "block_id": "kind",
                        "label": {"type": "plain_text", "text": "Kind"},
                        "element": {
                            "type": "static_select",
                            "action_id": "pick",
                            "options": [
                                {"text": {"type": "plain_text", "text": "Wrong"}, "value": "w"}
                            ],
                        },
                    },
                ],
            },
        )
        view_id = opened["view"]["id"]
        state = (await http.get("/sandbox/state", params={"user": "alice"})).json()
        assert state["modal"]["id"] == view_id
        assert (await http.get("/sandbox/state", params={"user": "bob"})).json()["modal"] is None

        receiver.answer(body={"response_action": "errors", "errors": {"reason": "Too short"}})
        submitted = await http.post(
            "/sandbox/act/submit",
            json={
                "user": "alice",
                "view_id": view_id,
                "values": {"reason": {"text": "no"}, "kind": {"pick": "w"}},
            },
        )
        assert submitted.json()["outcome"] == "errors"
        sent = receiver.requests[-1].payload
        assert sent["view"]["state"]["values"]["reason"]["text"]["value"] == "no"
        assert sent["view"]["state"]["values"]["kind"]["pick"]["selected_option"]["value"] == "w"
        state = (await http.get("/sandbox/state", params={"user": "alice"})).json()
        assert state["modal"]["errors"] == {"reason": "Too short"}

        empty = await http.post(
            "/sandbox/act/submit",
            json={"user": "alice", "view_id": view_id, "values": {"reason": {"text": ""}}},
        )
        assert empty.status_code == 400  # Slack's client would not submit empty required inputs

        closed = await http.post("/sandbox/act/close", json={"user": "alice", "view_id": view_id})
        assert closed.json()["delivered"]
        assert receiver.requests[-1].payload["type"] == "view_closed"
        state = (await http.get("/sandbox/state", params={"user": "alice"})).json()
        assert state["modal"] is None
