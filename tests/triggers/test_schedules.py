"""Cron schedules: local fire times across DST, exactly once across processes, misfire policies.

Time is a ManualClock: nothing here waits for a wall-clock cron time.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.support.clock import ManualClock
from tests.support.engines import workflow
from tests.support.harness import running_bot
from tests.support.stores import Database
from tests.triggers.conftest import run_input, runs_of
from workflows.language.triggers import ScheduleSpec
from workflows.language.workflow import Workflow
from workflows.scheduler import Scheduler
from workflows.schedules import fire_times, latest_fire_time, next_fire_times
from workflows.store import Store


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def london(cron: str, **extra: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"cron": cron, "timezone": "Europe/London"} | extra)


def scheduled(cron: str, timezone: str = "Europe/London", **extra: str) -> Workflow:
    options = "".join(f", {key}: {value}" for key, value in extra.items())
    return workflow(
        f"""
        name: report
        channel: "#general"
        triggers:
          - command: report
          - schedule: {{cron: "{cron}", timezone: {timezone}{options}}}
        steps:
          - id: note
            set: {{at: "{{{{ input.schedule.local_time }}}}"}}
        """
    )


# --- fire times: a pure function of (spec, now) --------------------------------------------


def test_daily_nine_oclock_london_follows_the_spring_change() -> None:
    fires = fire_times(london("0 9 * * *"), utc(2026, 3, 27), utc(2026, 3, 31))
    assert fires == [
        utc(2026, 3, 27, 9),  # GMT = UTC
        utc(2026, 3, 28, 9),
        utc(2026, 3, 29, 8),  # clocks went forward at 01:00 UTC that morning: 09:00 BST
        utc(2026, 3, 30, 8),
    ]


def test_daily_nine_oclock_london_follows_the_autumn_change() -> None:
    fires = fire_times(london("0 9 * * *"), utc(2026, 10, 23), utc(2026, 10, 27))
    assert fires == [
        utc(2026, 10, 23, 8),
        utc(2026, 10, 24, 8),
        utc(2026, 10, 25, 9),
        utc(2026, 10, 26, 9),
    ]


def test_a_local_time_skipped_by_the_spring_change_fires_once_after_the_jump() -> None:
    # 01:30 does not exist in London on 29 March 2026 (01:00 GMT -> 02:00 BST).
    fires = fire_times(london("30 1 * * *"), utc(2026, 3, 28), utc(2026, 3, 31))
    assert fires == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_a_local_time_repeated_by_the_autumn_change_fires_once() -> None:
    # 01:30 happens twice in London on 25 October 2026: 00:30 UTC (BST) and 01:30 UTC (GMT).
    fires = fire_times(london("30 1 * * *"), utc(2026, 10, 24), utc(2026, 10, 27))
    assert fires == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_an_hourly_cron_keeps_every_real_hour_on_the_long_day() -> None:
    # Sunday 25 October 2026 in London runs from 23:00 UTC (BST) to 00:00 UTC (GMT): 25 hours.
    midnight, next_midnight = utc(2026, 10, 24, 23), utc(2026, 10, 26, 0)
    second = timedelta(seconds=1)
    fires = fire_times(london("0 * * * *"), midnight - second, next_midnight - second)
    assert len(fires) == 25
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(fires))


def test_next_fire_times_are_strictly_after_now_and_respect_weekdays() -> None:
    spec = ScheduleSpec(cron="0 9 * * MON-FRI", timezone="America/New_York")
    friday_nine = utc(2026, 3, 6, 14)  # 09:00 EST
    assert next_fire_times(spec, friday_nine, 3) == [
        utc(2026, 3, 9, 13),  # Monday, 09:00 EDT (the US changed on 8 March)
        utc(2026, 3, 10, 13),
        utc(2026, 3, 11, 13),
    ]


def test_latest_fire_time_looks_back_only_within_the_window() -> None:
    spec = london("0 9 * * *")
    assert latest_fire_time(spec, utc(2026, 3, 2, 9, 0, 30), 60) == utc(2026, 3, 2, 9)
    assert latest_fire_time(spec, utc(2026, 3, 2, 9), 60) == utc(2026, 3, 2, 9)
    assert latest_fire_time(spec, utc(2026, 3, 2, 9, 1, 1), 60) is None
    assert latest_fire_time(spec, utc(2026, 3, 2, 8, 59, 59), 3600) is None


# --- the scheduler over a database ----------------------------------------------------------


async def step_through(
    scheduler: Scheduler, clock: ManualClock, until: datetime, step_s: float
) -> None:
    """What the APScheduler wake-ups amount to: ask for due fires as the clock moves on."""
    while clock.now() < until:
        for entry in scheduler.schedules:
            await scheduler.fire_due(entry)
        clock.advance(step_s)


@pytest.mark.parametrize(
    ("start", "end", "expected_utc_hours"),
    [
        (utc(2026, 3, 27), utc(2026, 3, 31), [9, 9, 8, 8]),
        (utc(2026, 10, 23), utc(2026, 10, 27), [8, 8, 9, 9]),
    ],
    ids=["spring", "autumn"],
)
async def test_a_cron_workflow_runs_at_nine_local_across_a_dst_change(
    store: Store, start: datetime, end: datetime, expected_utc_hours: list[int]
) -> None:
    clock = ManualClock(start)
    scheduler = Scheduler(store, {"report": scheduled("0 9 * * *")}, clock)
    await step_through(scheduler, clock, end, step_s=15 * 60)

    runs = await runs_of(store, "report")
    fired = [datetime.fromisoformat(run_input(run)["schedule"]["fire_time"]) for run, _ in runs]
    assert [f.hour for f in fired] == expected_utc_hours
    assert [run_input(run)["schedule"]["local_time"][11:16] for run, _ in runs] == ["09:00"] * 4
    assert all(request.source == "schedule" for _, request in runs)
    assert all(
        request.dedupe_key == f"schedule:report:1:{f.isoformat()}"
        for (_, request), f in zip(runs, fired, strict=True)
    )


async def test_three_schedulers_sharing_a_database_fire_once(database: Database) -> None:
    stores = [database.store() for _ in range(3)]
    try:
        clock = ManualClock(utc(2026, 3, 2, 9, 0, 0))
        definitions = {"report": scheduled("0 9 * * *")}
        schedulers = [Scheduler(store, definitions, clock) for store in stores]
        for _ in range(3):  # three wake-ups each, as if each process fired (and retried) it
            results = await asyncio.gather(*(s.fire_due(s.schedules[0]) for s in schedulers))
            assert len({r.run_id for r in results if r is not None}) == 1
        runs = await runs_of(stores[0], "report")
        assert len(runs) == 1
        assert runs[0][1].dedupe_key == "schedule:report:1:2026-03-02T09:00:00+00:00"
    finally:
        for store in stores:
            await store.dispose()


async def test_misfire_skip_does_not_run_a_fire_missed_while_down(store: Store) -> None:
    clock = ManualClock(utc(2026, 3, 2, 9, 5))  # the process comes up five minutes late
    scheduler = Scheduler(store, {"report": scheduled("0 9 * * *", misfire="skip")}, clock)
    assert await scheduler.catch_up() == []
    assert await scheduler.fire_due(scheduler.schedules[0]) is None
    assert await runs_of(store, "report") == []


async def test_misfire_run_once_runs_only_the_latest_missed_fire_within_grace(
    database: Database,
) -> None:
    # Every five minutes; down from 09:00 to 09:12 with ten minutes' grace: 09:05 and 09:10
    # are within grace, only 09:10 (the most recent) runs, and only once across processes
    # and restarts.
    definitions = {"report": scheduled("*/5 * * * *", misfire="run_once", grace="10m")}
    clock = ManualClock(utc(2026, 3, 2, 9, 12))
    stores = [database.store() for _ in range(3)]
    try:
        schedulers = [Scheduler(store, definitions, clock) for store in stores]
        results = await asyncio.gather(*(s.catch_up() for s in schedulers))
        assert sorted(len(r) for r in results) == [1, 1, 1]
        assert sorted(r[0].duplicate for r in results) == [False, True, True]
        clock.advance(30)  # a restart half a minute later
        again = await schedulers[0].catch_up()
        assert [r.duplicate for r in again] == [True]
        runs = await runs_of(stores[0], "report")
        assert [run_input(run)["schedule"]["fire_time"] for run, _ in runs] == [
            "2026-03-02T09:10:00+00:00"
        ]
    finally:
        for store in stores:
            await store.dispose()


async def test_misfire_run_once_does_not_run_a_fire_older_than_grace(store: Store) -> None:
    clock = ManualClock(utc(2026, 3, 2, 9, 20))
    definitions = {"report": scheduled("0 9 * * *", misfire="run_once", grace="10m")}
    scheduler = Scheduler(store, definitions, clock)
    assert await scheduler.catch_up() == []
    assert await runs_of(store, "report") == []


async def test_start_registers_cron_jobs_whose_wakeup_fires_the_due_run(store: Store) -> None:
    clock = ManualClock(utc(2026, 3, 2, 9, 0, 2))
    scheduler = Scheduler(store, {"report": scheduled("0 9 * * *")}, clock)
    await scheduler.start()
    try:
        # Retention's hourly purge is always registered (it reads the live policy each hour).
        [retention, job] = sorted(scheduler.jobs(), key=lambda j: j.id)
        assert (retention.id, job.id) == ("retention", "schedule:report:1")
        # APScheduler plans with the wall clock; it must agree with our own computation.
        wall_now = datetime.now(UTC)
        assert job.next_run_time == next_fire_times(scheduler.schedules[0].spec, wall_now, 1)[0]
        await job.func(*job.args)  # what APScheduler runs at the fire time
    finally:
        await scheduler.stop()
    [(run, request)] = await runs_of(store, "report")
    assert request.dedupe_key == "schedule:report:1:2026-03-02T09:00:00+00:00"
    assert run.status == "running"
    assert scheduler.jobs() == []


# --- wiring: the runtime, the command line ---------------------------------------------------

EVERY_MINUTE = """
name: heartbeat
channel: "#general"
triggers:
  - schedule: {cron: "* * * * *", timezone: Europe/London, misfire: run_once, grace: 2m}
steps:
  - id: beat
    set: {at: "{{ input.schedule.local_time }}"}
"""


@pytest.mark.parametrize("enabled", [True, False], ids=["scheduler", "no-scheduler"])
async def test_serve_runs_the_scheduler_unless_switched_off(
    database: Database, tmp_path: Path, enabled: bool
) -> None:
    # Every minute with two minutes' grace: start-up always has a fire to catch up on.
    (tmp_path / "heartbeat.yaml").write_text(EVERY_MINUTE)
    async with running_bot(
        database, workflows_dir=tmp_path, SWITCHBOARD_SCHEDULER=enabled
    ) as harness:
        if enabled:
            root = await harness.root_message("general", "started heartbeat")
            assert root["ts"]
            jobs = harness.runtime.scheduler.jobs()  # type: ignore[union-attr]
            assert sorted(job.id for job in jobs) == ["retention", "schedule:heartbeat:0"]
        runs = await runs_of(harness.runtime.store, "heartbeat")
    assert bool(runs) is enabled


def test_the_schedules_command_lists_next_fire_times(tmp_path: Path) -> None:
    (tmp_path / "report.yaml").write_text(
        """
name: report
triggers:
  - schedule: {cron: "0 9 * * MON-FRI", timezone: Europe/London, misfire: run_once, grace: 10m}
  - threshold: {every: 1m, sql: {connection: db, query: "select 1"}, above: 5, clear: 4}
steps:
  - id: s
    set: {a: 1}
"""
    )
    result = CliRunner().invoke(
        app,
        ["schedules", "-n", "4"],
        env={"SWITCHBOARD_WORKFLOWS": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "0 9 * * MON-FRI" in result.output
    assert "run_once (grace 600s)" in result.output
    local_nines = re.findall(
        r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 09:00 (GMT|BST)", result.output
    )
    assert len(local_nines) == 4
    assert "> 5" in result.output and "<= 4" in result.output
