"""What sits on /flow's ack path: stats are computed after the ack; run look-ups only read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database

SLOW = "name: slow\nsteps:\n  - id: pause\n    wait: {duration: 1h}\n"


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "slow.yaml").write_text(SLOW)
    async with running_bot(database, workflows_dir=tmp_path, run_workers=0) as bot:
        yield bot


def followups(harness: Harness, user: str) -> list[dict[str, Any]]:
    return [e for e in harness.slack.ephemerals(user) if e.get("source") == "response_url"]


async def test_flow_stats_acks_at_once_and_answers_in_a_follow_up(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "start slow one")
    result = await slack.slash_command("alice", "general", "stats 7d")
    assert result.ok, result.body
    assert "Working out the stats for the past 7d" in result.body
    assert "requests, median cycle" not in result.body, "the period was read before the ack"

    def answered() -> list[dict[str, Any]] | None:
        return followups(harness, "alice") or None

    [followup] = await slack.wait_for(answered, timeout=10, message="no stats follow-up")
    assert "Stats for 7d: 1 request, median cycle" in followup["text"]
    assert slack.messages("general") == [], "stats are ephemeral"


async def test_flow_status_answers_while_a_writer_holds_the_database(harness: Harness) -> None:
    slack = harness.slack
    started = await slack.slash_command("alice", "general", "start slow two")
    run_id = started.body.split("run `", 1)[1].split("`", 1)[0]
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_writer() -> None:
        async with harness.runtime.store.transaction() as session:
            await session.connection()  # a real open write transaction
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_writer())
    await holding.wait()
    try:
        status = await slack.slash_command("alice", "general", f"status {run_id}")
    finally:
        release.set()
        await holder
    assert status.ok, f"status waited for the writer: {status.error}"
    assert run_id in status.body and "running" in status.body, status.body
