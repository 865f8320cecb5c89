"""Mentions typed by a requester are echoed as text, never as pings; the bot's own still ping.

A step's one-line summary quotes request text ("set said = …") and is rendered with the
``mentions`` filter, which keeps user and channel mentions working because our own
summaries use them ("approved by <@U…>"). Before the fix that also kept every ``<@U…>`` and
``<#C…>`` the requester typed: echoing their words pinged the people they named. Driven
through /flow, an intake channel message, an emoji reaction (whose text the bot reads
later) and a signed webhook body against the real bot and the emulator; the assertions are
on the text the emulator stored, as Slack would have received it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.webhook_out import sign
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database

ECHOER = """\
name: echoer
channel: "#general"
triggers:
  - command: echoer
  - message: {channel: "#ap-inbox"}
  - reaction: {emoji: eyes, channel: "#finance-approvals"}
steps:
  - id: keep
    set: {said: "{{ input.text }}"}
"""
HOOKED = """\
name: hooked
channel: "#general"
triggers:
  - webhook: {secret_env: TEST_MENTIONS_HOOK_SECRET}
steps:
  - id: keep
    set: {said: "{{ input.body.note }}"}
"""
HOOK_SECRET = "mentions-hook-secret-7f3a"


@pytest.fixture
async def harness(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("TEST_MENTIONS_HOOK_SECRET", HOOK_SECRET)
    (tmp_path / "echoer.yaml").write_text(ECHOER)
    (tmp_path / "hooked.yaml").write_text(HOOKED)
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


def typed(harness: Harness) -> dict[str, str]:
    """What a requester types, and the escaped form the bot must echo instead."""
    bob, general = harness.slack.user_id("bob"), harness.slack.channel_id("general")
    return {
        f"<@{bob}>": f"&lt;@{bob}&gt;",
        f"<@{bob}|bob>": f"&lt;@{bob}|bob&gt;",
        f"<#{general}>": f"&lt;#{general}&gt;",
        "<!here>": "&lt;!here&gt;",
        "<!subteam^S0SB000001|ops>": "&lt;!subteam^S0SB000001|ops&gt;",
    }


def texts_of(message: dict[str, Any]) -> list[str]:
    """The message's fallback text and every section's mrkdwn: everything Slack would parse."""
    sections = [b["text"]["text"] for b in message.get("blocks", []) if "text" in b]
    return [message["text"], *sections]


async def step_note(harness: Harness, channel: str, root: dict[str, Any]) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        thread = harness.slack.thread(channel, root["ts"])
        # The step's own note (thread: full) or its line on the run card (compact).
        return next((m for m in thread[1:] if ("\n" + m["text"]).count("\nkeep:")), None)

    return await harness.slack.wait_for(found, timeout=10, message="no note of the keep step")


async def test_mentions_typed_into_flow_are_echoed_escaped(harness: Harness) -> None:
    mentions = typed(harness)
    text = "echoer please ask " + " and ".join(mentions)
    assert (await harness.slack.slash_command("alice", "general", text)).ok
    root = await harness.root_message("general", "started echoer")
    note = await step_note(harness, "general", root)

    for shown in texts_of(note):
        for raw in mentions:
            assert raw not in shown, f"{raw} would ping: {shown}"
        assert mentions[f"<@{harness.slack.user_id('bob')}>"] in shown
    assert f"<@{harness.slack.user_id('alice')}>" in root["text"], "our own mention still pings"


async def test_mentions_in_an_intake_message_are_echoed_escaped(harness: Harness) -> None:
    mentions = typed(harness)
    posted = await harness.slack.user_posts("carol", "ap-inbox", "hi " + " ".join(mentions))
    root = harness.slack.message(harness.slack.channel_id("ap-inbox"), posted["ts"])
    assert root is not None
    note = await step_note(harness, "ap-inbox", root)

    for shown in texts_of(note):
        for raw in mentions:
            assert raw not in shown, f"{raw} would ping: {shown}"


def assert_escaped(harness: Harness, note: dict[str, Any], mentions: dict[str, str]) -> None:
    for shown in texts_of(note):
        for raw in mentions:
            assert raw not in shown, f"{raw} would ping: {shown}"
        assert mentions[f"<@{harness.slack.user_id('bob')}>"] in shown


async def test_mentions_in_a_reacted_message_are_echoed_escaped(harness: Harness) -> None:
    # The reaction carries no text: the bot reads the message later, after start_run.
    mentions = typed(harness)
    channel = "finance-approvals"
    posted = await harness.slack.user_posts("carol", channel, "hi " + " ".join(mentions))
    await harness.slack.add_reaction("alice", channel, posted["ts"], "eyes")
    root = harness.slack.message(harness.slack.channel_id(channel), posted["ts"])
    assert root is not None
    assert_escaped(harness, await step_note(harness, channel, root), mentions)


async def test_mentions_in_a_webhook_body_are_echoed_escaped(harness: Harness) -> None:
    mentions = typed(harness)
    body = json.dumps({"text": "deployed", "note": "ask " + " ".join(mentions)}).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
    }
    async with httpx.AsyncClient(base_url=harness.bot_url) as http:
        response = await http.post("/hooks/hooked", content=body, headers=headers)
    assert response.status_code == 200, response.text
    root = await harness.root_message("general", "started hooked")
    assert_escaped(harness, await step_note(harness, "general", root), mentions)
