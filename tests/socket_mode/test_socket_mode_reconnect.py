"""A link replaced mid-burst loses nothing and doubles nothing: every command is one run.

The emulator re-delivers an envelope whose link closed before its ack (``retry_attempt``
+ 1) and slack_sdk acks on whichever link is current, so some commands reach the bot
twice; the command listener's start, keyed by ``trigger_id``, makes the second a no-op.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import func, select

from sandbox.slack.delivery import DeliveryResult
from tests.socket_mode.workflows import write_workflows
from tests.support.harness import Harness
from tests.support.socket_harness import running_socket_bot
from tests.support.stores import Database, pg_available, postgres_database
from workflows.tables import DecisionRow, RunRow

BURST = 20


async def runs_by_text(harness: Harness) -> dict[str, int]:
    """Runs in the database, counted by the text they were started with."""
    async with harness.runtime.store.transaction() as session:
        runs = (await session.scalars(select(RunRow))).all()
    return dict(Counter(str(run.context["input"]["text"]) for run in runs))


async def burst_across_a_reconnect(
    harness: Harness, break_link: Literal["refresh", "drop"]
) -> list[DeliveryResult]:
    slack = harness.slack
    slack.socket.disconnect_grace = 0.5

    async def command(i: int) -> DeliveryResult:
        await asyncio.sleep(0.01 * i)
        return await slack.slash_command("alice", "general", f"hello burst-{i:02d}")

    async def interrupt() -> None:
        await asyncio.sleep(0.01 * BURST / 2)
        if break_link == "refresh":
            await slack.socket.disconnect("refresh_requested")
        else:
            await slack.socket.drop()

    results, _ = await asyncio.gather(
        asyncio.gather(*(command(i) for i in range(BURST))), interrupt()
    )
    return list(results)


async def assert_each_command_ran_once(harness: Harness, results: list[DeliveryResult]) -> None:
    assert [r.ok for r in results] == [True] * BURST, [r.error for r in results]
    expected = {f"burst-{i:02d}": 1 for i in range(BURST)}

    async def all_started() -> dict[str, int] | None:
        counted = await runs_by_text(harness)
        return counted if sum(counted.values()) >= BURST else None

    counted = await harness.slack.wait_for(all_started, timeout=10, message="runs were lost")
    await asyncio.sleep(0.3)  # a late duplicate would show up by now
    assert await runs_by_text(harness) == expected == counted
    assert harness.slack.socket.opened() >= 2, "the link was replaced"


@pytest.mark.parametrize("break_link", ["refresh", "drop"])
async def test_a_burst_across_a_reconnect_runs_every_command_exactly_once(
    sqlite_db: Database, tmp_path: Path, break_link: Literal["refresh", "drop"]
) -> None:
    async with running_socket_bot(
        sqlite_db, workflows_dir=write_workflows(tmp_path), run_workers=0, ack_deadline=10
    ) as harness:
        results = await burst_across_a_reconnect(harness, break_link)
        await assert_each_command_ran_once(harness, results)


async def test_a_burst_across_a_refresh_on_postgresql(tmp_path: Path) -> None:
    reason = await pg_available()
    if reason and os.environ.get("SWITCHBOARD_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL is required here: {reason}")
    if reason:
        pytest.skip(reason)
    async with (
        postgres_database() as database,
        running_socket_bot(
            database, workflows_dir=write_workflows(tmp_path), run_workers=0, ack_deadline=10
        ) as harness,
    ):
        results = await burst_across_a_reconnect(harness, "refresh")
        await assert_each_command_ran_once(harness, results)


async def test_every_envelope_delivered_twice_still_acts_once(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_socket_bot(
        sqlite_db, workflows_dir=write_workflows(tmp_path), run_workers=1
    ) as harness:
        slack = harness.slack
        slack.socket.deliver_twice = 1_000
        results = await asyncio.gather(
            *(slack.slash_command("bob", "general", f"hello twice-{i}") for i in range(5))
        )
        assert all(r.ok for r in results)
        message = await slack.user_posts("bob", "general", "the printer is on fire")
        await slack.wait_for(
            lambda: any(
                "Helpdesk has it" in m["text"] for m in slack.thread("general", message["ts"])
            ),
            message="no intake reply",
        )
        retries = [f.message for f in slack.socket.frames if f.message.get("retry_attempt") == 1]
        assert {m["type"] for m in retries} == {"slash_commands", "events_api"}
        await asyncio.sleep(0.3)
        expected = {f"twice-{i}": 1 for i in range(5)} | {"the printer is on fire": 1}
        assert await runs_by_text(harness) == expected
        replies = [
            m for m in slack.thread("general", message["ts"]) if "Helpdesk has it" in m["text"]
        ]
        assert len(replies) == 1, "the intake replied once"


async def test_an_approval_click_delivered_twice_decides_once(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_socket_bot(sqlite_db, workflows_dir=write_workflows(tmp_path)) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "expense train tickets")
        card = await slack.wait_for(
            lambda: next(iter(slack.messages("finance-approvals")), None), message="no card"
        )
        slack.socket.deliver_twice = 1
        result = await slack.click(
            "carol", card["ts"], "approval:approve", channel="finance-approvals"
        )
        assert result.ok
        retried = [f.message for f in slack.socket.frames if f.message.get("retry_attempt") == 1]
        assert [m["payload"]["type"] for m in retried] == ["block_actions"]

        async def decided() -> int:
            async with harness.runtime.store.transaction() as session:
                return int(await session.scalar(select(func.count()).select_from(DecisionRow)) or 0)

        await slack.wait_for(decided, message="no decision recorded")
        await asyncio.sleep(0.3)
        assert await decided() == 1
