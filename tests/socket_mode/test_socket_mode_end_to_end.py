"""The product over Socket Mode: the bot opens a WebSocket to the emulator and Slack's
requests arrive on it as envelopes; nothing is delivered over signed HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.socket_mode.workflows import write_workflows
from tests.support.harness import Harness
from tests.support.socket_harness import running_socket_bot
from tests.support.stores import Database
from workflows.tables import RunRow


@pytest.fixture
async def harness(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_socket_bot(sqlite_db, workflows_dir=write_workflows(tmp_path)) as running:
        yield running


def envelopes(harness: Harness, kind: str) -> list[dict[str, Any]]:
    return [
        frame.message
        for frame in harness.slack.socket.frames
        if frame.direction == "to_app" and frame.message.get("type") == kind
    ]


async def runs_counted(harness: Harness, workflow: str | None = None) -> int:
    query = select(func.count()).select_from(RunRow)
    if workflow is not None:
        query = query.where(RunRow.workflow == workflow)
    async with harness.runtime.store.transaction() as session:
        return int(await session.scalar(query) or 0)


async def test_the_bot_opens_a_link_and_gets_hello(harness: Harness) -> None:
    slack = harness.slack
    assert slack.request_url is None, "no HTTP delivery is possible in these tests"
    assert slack.socket.connections == 1
    (hello,) = envelopes(harness, "hello")
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": slack.workspace.app_id}
    assert {"host", "build_number", "approximate_connection_time"} <= set(hello["debug_info"])
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{harness.bot_url}/healthz")).status_code == 200
        ready = await client.get(f"{harness.bot_url}/readyz")
        assert ready.status_code == 200, ready.text


async def test_slash_command_over_the_socket_threads_a_run(harness: Harness) -> None:
    slack = harness.slack
    result = await slack.slash_command("alice", "general", "start hello brave new world")
    assert result.ok, result.error
    assert result.outcome == "responded", "the ack payload is shown as the ephemeral answer"
    assert any("Started" in e["text"] for e in slack.ephemerals("alice"))
    (envelope,) = envelopes(harness, "slash_commands")
    assert envelope["accepts_response_payload"] is True
    assert envelope["payload"]["command"] == "/flow"
    acks = [f.message for f in slack.socket.frames if f.direction == "from_app"]
    assert [a["envelope_id"] for a in acks] == [envelope["envelope_id"]]

    root = await harness.root_message("general", "started hello")
    thread = await harness.thread_of("general", root, replies=2)
    assert any("Hello, brave new world! (3 words)" in m["text"] for m in thread)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{harness.bot_url}/metrics")).text
    assert 'switchboard_requests_received_total{status="200",trigger="command"}' in metrics


async def test_approval_click_over_the_socket_decides_once(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense team dinner 120 EUR")
    card = await slack.wait_for(
        lambda: next(iter(slack.messages("finance-approvals")), None), message="no card"
    )
    result = await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
    assert result.ok, result.error
    (click,) = envelopes(harness, "interactive")
    assert click["payload"]["type"] == "block_actions"
    assert click["accepts_response_payload"] is False

    def settled() -> dict[str, Any] | None:
        message = slack.message(slack.channel_id("finance-approvals"), card["ts"])
        return message if message and "Approved" in str(message.get("blocks")) else None

    await slack.wait_for(settled, message="the card was not updated")

    async def succeeded() -> bool:
        async with harness.runtime.store.transaction() as session:
            run = (await session.scalars(select(RunRow))).one()
        return run.status == "succeeded"

    await slack.wait_for(succeeded, message="the run did not finish")


async def test_reject_modal_submit_gets_its_response_action_over_the_socket(
    harness: Harness,
) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense new laptop")
    card = await slack.wait_for(
        lambda: next(iter(slack.messages("finance-approvals")), None), message="no card"
    )
    await slack.click("carol", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    empty = await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": "  "}})
    assert empty.outcome == "errors", "response_action errors travelled in the ack payload"
    assert json.loads(empty.body)["response_action"] == "errors"
    submission = [
        e for e in envelopes(harness, "interactive") if e["payload"]["type"] == "view_submission"
    ]
    assert submission and submission[0]["accepts_response_payload"] is True
    done = await slack.submit_view(
        "carol", views[-1]["id"], {"reason": {"reason": "Over the quarterly budget"}}
    )
    assert done.outcome == "closed"

    def settled() -> bool:
        message = slack.message(slack.channel_id("finance-approvals"), card["ts"])
        return bool(message) and "Over the quarterly budget" in str(message["blocks"])

    await slack.wait_for(settled, message="the card does not show the reason")


async def test_a_message_in_a_watched_channel_starts_intake_over_the_socket(
    harness: Harness,
) -> None:
    slack = harness.slack
    message = await slack.user_posts("bob", "general", "the printer on floor 3 is jammed")
    events = envelopes(harness, "events_api")
    assert events and events[0]["payload"]["event"]["type"] == "message"
    assert events[0]["retry_attempt"] == 0

    def replied() -> bool:
        thread = slack.thread("general", message["ts"])
        return any("Helpdesk has it" in m.get("text", "") for m in thread)

    await slack.wait_for(replied, message="the intake did not reply in the thread")
    assert await runs_counted(harness, "helpdesk") == 1
