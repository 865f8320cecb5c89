"""The walking skeleton, end to end through signed HTTP: /flow in, thread out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sandbox.slack import signed_headers
from tests.support.harness import SIGNING_SECRET, Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RunRow


@pytest.fixture
async def harness(database: Database) -> AsyncIterator[Harness]:
    async with running_bot(database) as running:
        yield running


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
async def test_acks_arrive_within_milliseconds(database: Database) -> None:
    # The ack path alone (no worker sharing the test's event loop); a single timing is at
    # the mercy of the machine, the median of several is not.
    async with running_bot(database, run_workers=0) as harness:
        results = [
            await harness.slack.slash_command("alice", "general", f"start hello {i}")
            for i in range(7)
        ]
    assert all(result.status == 200 and "Started" in result.body for result in results)
    timings = sorted(result.elapsed_ms for result in results)
    assert timings[len(timings) // 2] < 100, f"median ack {timings}"
    assert timings[-1] < 1000, f"slowest ack {timings[-1]:.0f} ms"


async def test_flow_start_hello_threads_every_step(harness: Harness) -> None:
    slack = harness.slack
    result = await slack.slash_command("alice", "general", "start hello brave new world")
    assert result.status == 200
    assert "Started" in result.body

    root = await harness.root_message("general", "started hello")
    assert f"<@{slack.user_id('alice')}>" in root["text"]
    # Compact (the default): one run card lists the steps; the post is its own message.
    thread = await slack.wait_for(
        lambda: (
            (t := slack.thread("general", root["ts"]))
            and any("\nreply:" in m["text"] for m in t)
            and t
        ),
        message="the run card never listed the reply step",
    )
    texts = [message["text"] for message in thread[1:]]
    (card,) = [text for text in texts if text.startswith("Run card")]
    assert "\ngreet: set" in card and "\nreply: posted" in card
    assert "Hello, brave new world! (3 words)" in texts
    audit_lines = [
        element["text"]
        for message in thread[1:]
        for block in message.get("blocks", [])
        if block["type"] == "context"
        for element in block["elements"]
    ]
    assert any(line.startswith("audit · set · attempt 1") for line in audit_lines)
    assert any(line.startswith("audit · post · attempt 1") for line in audit_lines)


async def test_shorthand_command_and_workflow_alias(harness: Harness) -> None:
    result = await harness.slack.slash_command("bob", "general", "hello there")
    assert result.ok
    root = await harness.root_message("general", "started hello")
    assert f"<@{harness.slack.user_id('bob')}>" in root["text"]


async def test_a_failing_step_is_threaded_with_what_to_do(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "breaks.yaml").write_text(
        'name: breaks\nsteps:\n  - id: check\n    fail: "PO {{ input.text }} does not exist"\n'
    )
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        await harness.slack.slash_command("alice", "general", "breaks PO-9")
        root = await harness.root_message("general", "started breaks")
        thread = await harness.thread_of("general", root, replies=1)
        assert "check failed: PO PO-9 does not exist" in thread[1]["text"]
        assert "/flow retry" in str(thread[1]["blocks"])


@pytest.mark.parametrize("text", ["", "help", "frobnicate now", "start", "start nope x", "status"])
async def test_unknown_or_incomplete_input_gets_ephemeral_help(harness: Harness, text: str) -> None:
    result = await harness.slack.slash_command("alice", "general", text)
    assert result.status == 200
    assert "Usage: /flow" in result.body
    assert harness.slack.messages("general") == [], "help is ephemeral: nothing posted"
    async with harness.runtime.store.transaction() as session:
        assert (await session.get(RunRow, "x")) is None


async def test_list_names_the_loaded_workflows(harness: Harness) -> None:
    result = await harness.slack.slash_command("alice", "general", "list")
    assert result.ok
    assert "/flow hello" in result.body


async def test_user_text_cannot_ping_or_break_the_card(harness: Harness) -> None:
    text = 'hello <!channel> "quoted" {{ 7*7 }} & <https://evil.example|click>'
    await harness.slack.slash_command("alice", "general", text)
    root = await harness.root_message("general", "started hello")
    thread = await harness.thread_of("general", root, replies=2)
    assert "<!channel>" not in root["text"]
    assert "&lt;!channel&gt;" in root["text"]
    (post,) = [m for m in thread[1:] if not m["text"].startswith("Run card")]
    assert "{{ 7*7 }}" in post["text"], "the template expression arrives as text"


@pytest.mark.parametrize("problem", ["bad-signature", "stale", "missing"])
async def test_bad_or_stale_signature_is_401_and_starts_nothing(
    harness: Harness, problem: str
) -> None:
    body = b"command=%2Fflow&text=hello+x&user_id=U1&channel_id=C1&team_id=T1"
    timestamp = int(time.time()) - (600 if problem == "stale" else 0)
    headers = signed_headers(SIGNING_SECRET, body, timestamp=timestamp)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    if problem == "bad-signature":
        headers = signed_headers("not-the-secret", body) | {"Content-Type": headers["Content-Type"]}
    if problem == "missing":
        headers = {"Content-Type": headers["Content-Type"]}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{harness.bot_url}/slack/events", content=body, headers=headers
        )
    assert response.status_code == 401
    async with harness.runtime.store.transaction() as session:
        from sqlalchemy import func, select

        assert await session.scalar(select(func.count()).select_from(RunRow)) == 0
