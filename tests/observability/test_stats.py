"""Operational statistics from seeded runs: the numbers, /flow stats and ``switchboard stats``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.observability.seed import seed_week
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.stats import collect, human_duration, parse_period, percentile

WEEK = timedelta(days=7)


def shown(body: str) -> str:
    """An ack body as the text people read (JSON escapes undone)."""
    return json.dumps(json.loads(body), ensure_ascii=False)


async def test_a_week_of_runs_gives_the_right_numbers(database: Database) -> None:
    store = database.store()
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        await seed_week(store, now, "UA", "UB")
        stats = await collect(store, start=now - WEEK, end=now, now=now)
    finally:
        await store.dispose()

    assert stats.volume == 7, "the run ten days ago is outside the week"
    assert stats.by_workflow == {"purchase": 5, "access": 2}
    assert stats.outcomes == {"succeeded": 5, "failed": 1, "waiting": 1}
    assert stats.by_workflow_outcome["purchase"] == {"failed": 1, "succeeded": 3, "waiting": 1}
    assert stats.finished == 6
    assert stats.cycle_p50 == 55 * 60
    assert stats.cycle_p90 == 150 * 60
    assert stats.people_seconds == 210 * 60
    assert stats.machine_seconds == 240 * 60
    assert stats.exception_rate == pytest.approx(1 / 6)
    assert (stats.assignments, stats.triage_share) == (2, 0.5)
    assert [(a.user_id, a.decisions, a.median_seconds) for a in stats.approvers] == [
        ("UA", 2, 75 * 60),
        ("UB", 1, 60 * 60),
    ]
    top = stats.bottlenecks[0]
    assert (top.workflow, top.step_id, top.jobs, top.total_seconds) == (
        "purchase",
        "erp_check",
        3,
        60,
    )
    assert [(p.run_id, p.approvers) for p in stats.pending] == [("p5", ["UA", "UB"])]
    assert stats.pending[0].waiting_seconds == 5 * 3600
    assert len(stats.days) == 8, "each UTC day the 7-day window touches"
    assert sum(day.volume for day in stats.days) == 7


async def test_one_workflow_and_an_empty_period(database: Database) -> None:
    store = database.store()
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        await seed_week(store, now, "UA", "UB")
        purchase = await collect(store, start=now - WEEK, end=now, now=now, workflow="purchase")
        access = await collect(store, start=now - WEEK, end=now, now=now, workflow="access")
        past = now - timedelta(days=30)
        empty = await collect(store, start=past - WEEK, end=past, now=now, exclude=["purchase"])
    finally:
        await store.dispose()
    assert (purchase.volume, purchase.cycle_p50, purchase.cycle_p90) == (5, 90 * 60, 162 * 60)
    assert access.pending == [] and access.exception_rate == 0
    assert empty.volume == 0 and empty.empty and empty.cycle_p50 is None


def test_periods_percentiles_and_durations() -> None:
    assert parse_period("7d") == WEEK
    assert parse_period("24h") == parse_period("day") == timedelta(days=1)
    assert parse_period("2w") == timedelta(days=14)
    for bad in ("0d", "7y", "forever", "400d"):
        with pytest.raises(ValueError, match="period"):
            parse_period(bad)
    assert percentile([], 50) is None
    assert percentile([4.0], 90) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert [human_duration(s) for s in (None, 45, 720, 3600, 12000, 187200)] == [
        "–",
        "45s",
        "12m",
        "1h",
        "3h 20m",
        "2d 4h",
    ]


async def followup(harness: Harness, text: str) -> str:
    """/flow stats acks at once; the stats come after, through the response_url."""

    def followups() -> list[dict[str, Any]]:
        return [e for e in harness.slack.ephemerals("alice") if e["source"] == "response_url"]

    before = len(followups())
    assert (await harness.slack.slash_command("alice", "general", text)).ok

    def answered() -> list[dict[str, Any]] | None:
        return followups()[before:] or None

    [answer] = await harness.slack.wait_for(answered, timeout=10, message="no stats")
    return json.dumps(answer, ensure_ascii=False)


async def test_flow_stats_answers_ephemerally(database: Database) -> None:
    async with running_bot(database, run_workers=0) as harness:
        now = datetime.now(UTC).replace(microsecond=0)
        alice, bob = harness.slack.user_id("alice"), harness.slack.user_id("bob")
        await seed_week(harness.runtime.store, now, alice, bob)

        everything_text = await followup(harness, "stats")
        purchase_text = await followup(harness, "stats 7d purchase")
        bad = await harness.slack.slash_command("alice", "general", "stats purchase 7y!")

    assert "7 requests, median cycle 55m" in everything_text
    assert "p90 2h 30m" in everything_text
    assert "3h 30m / 4h (47% people)" in everything_text
    assert "17% (1 failed)" in everything_text
    assert "50% of 2 routed" in everything_text
    assert f"<@{alice}>: 1h 15m over 2 decisions" in everything_text
    assert "purchase · erp_check: 1m over 3 jobs" in everything_text
    assert "p50 1h 30m · p90 2h 42m" in purchase_text
    assert "purchase: the past 7d" in purchase_text
    assert "Usage: /flow" in bad.body and "period looks like" in bad.body
    assert harness.slack.messages("general") == [], "stats are ephemeral"


async def test_switchboard_stats_prints_tables(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = database.store()
    try:
        await seed_week(store, datetime.now(UTC).replace(microsecond=0), "UA", "UB")
    finally:
        await store.dispose()
    for name, value in database.env().items():
        monkeypatch.setenv(name, value)
    # typer's runner calls asyncio.run: run it off this test's event loop.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["stats", "--period", "7d", "--workflow", "purchase"]
    )
    assert result.exit_code == 0, result.output
    assert "Cycle time p50 / p90" in result.output
    assert "1h 30m / 2h 42m" in result.output
    assert "erp_check" in result.output
    assert "p5" in result.output, "the pending approval is listed"
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["stats", "--period", "soon"])
    assert bad.exit_code == 2 and "period 'soon'" in bad.output


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
async def test_flow_stats_does_not_wait_for_a_writer(database: Database) -> None:
    """The stats are a read: a long write transaction elsewhere must not hold them.

    On SQLite writers queue behind one lock (``BEGIN IMMEDIATE``); stats read in a
    deferred snapshot, so the answer to ``/flow stats`` (acked at once, the figures
    following through the response_url) arrives while a writer holds that lock.
    """
    async with running_bot(database, run_workers=0) as harness:
        now = datetime.now(UTC).replace(microsecond=0)
        await seed_week(harness.runtime.store, now, "UA", "UB")
        holding, release = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> None:
            async with harness.runtime.store.transaction():
                holding.set()
                await release.wait()

        writer = asyncio.create_task(slow_writer())
        try:
            await asyncio.wait_for(holding.wait(), 5)
            started = asyncio.get_running_loop().time()
            text = await asyncio.wait_for(followup(harness, "stats"), 10)
            seconds = asyncio.get_running_loop().time() - started
        finally:
            release.set()
            await writer
    assert "7 requests" in text
    assert seconds < 2.5, f"/flow stats waited {seconds:.1f} s for the writer"
