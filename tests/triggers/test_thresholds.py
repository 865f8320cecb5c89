"""Threshold triggers: hysteresis over a real HTTP stand-in and a real SQL database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.registry import ConnectorRegistry
from tests.support.clock import ManualClock
from tests.support.engines import workflow
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from tests.triggers.conftest import run_input, runs_of
from workflows.language.triggers import ThresholdSpec
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_file
from workflows.scheduler import Scheduler
from workflows.store import Store
from workflows.tables import ThresholdStateRow
from workflows.thresholds import Transition, transition

QUEUE_ALERT = """
name: queue-alert
channel: "#ops"
triggers:
  - threshold:
      every: 1m
      http: {connection: metrics, path: /queue, select: stats.depth}
      above: 5
      clear: 4
steps:
  - id: note
    set: {depth: "{{ input.value }}"}
"""


@dataclass
class Metrics:
    """A stand-in monitoring API whose queue depth the test sets."""

    depth: Any = 0
    calls: int = 0

    def app(self) -> Starlette:
        async def queue(_request: Request) -> JSONResponse:
            self.calls += 1
            return JSONResponse({"stats": {"depth": self.depth}})

        return Starlette(routes=[Route("/queue", queue)])


@pytest.fixture
async def metrics() -> AsyncIterator[tuple[Metrics, ConnectorRegistry]]:
    api = Metrics()
    async with serve_asgi(api.app()) as url:
        raw = {"metrics": {"type": "http", "base_url": url, "retry": {"attempts": 1}}}
        async with ConnectorRegistry.build(raw, env={}) as registry:
            yield api, registry


def spec(**fields: Any) -> ThresholdSpec:
    return ThresholdSpec.model_validate({"sql": {"connection": "db", "query": "select 1"}} | fields)


def test_hysteresis_fires_on_crossing_and_rearms_only_past_clear() -> None:
    above = spec(above=5, clear=4)
    assert transition(above, armed=True, value=5) is Transition.STAY  # at the line: not past it
    assert transition(above, armed=True, value=5.1) is Transition.FIRE
    assert transition(above, armed=False, value=9) is Transition.STAY
    assert transition(above, armed=False, value=4.5) is Transition.STAY  # between clear and above
    assert transition(above, armed=False, value=4) is Transition.REARM
    below = spec(below=1)  # clear defaults to the threshold
    assert transition(below, armed=True, value=0.5) is Transition.FIRE
    assert transition(below, armed=False, value=0.9) is Transition.STAY
    assert transition(below, armed=False, value=1) is Transition.REARM


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"above": 5, "below": 1}, "exactly one of above or below"),
        ({}, "exactly one of above or below"),
        ({"above": 5, "clear": 6}, "clear must not be greater than above"),
        ({"below": 5, "clear": 4}, "clear must not be less than below"),
        ({"above": 5, "http": {"connection": "m"}}, "exactly one source"),
        ({"above": 5, "every": "0.1s"}, "greater than or equal to 1"),
    ],
)
def test_bad_threshold_definitions_say_what_is_wrong(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        spec(**fields)


async def test_fires_once_on_crossing_and_again_only_after_recovering(
    store: Store, metrics: tuple[Metrics, ConnectorRegistry]
) -> None:
    api, registry = metrics
    clock = ManualClock()
    scheduler = Scheduler(store, {"queue-alert": workflow(QUEUE_ALERT)}, clock, connectors=registry)
    [entry] = scheduler.thresholds

    outcomes = []
    for depth in [3, 6, 9, 4.5, 7, 4, 2, 8, 8]:
        api.depth = depth
        result = await scheduler.check_threshold(entry)
        outcomes.append(result.transition.value)
        clock.advance(60)

    assert outcomes == [
        "stay", "fire", "stay", "stay", "stay", "rearm", "stay", "fire", "stay"
    ]  # fmt: skip
    runs = await runs_of(store, "queue-alert")
    assert [run_input(run)["value"] for run, _ in runs] == [6, 8]
    assert [request.source for _, request in runs] == ["threshold", "threshold"]
    assert run_input(runs[0][0])["threshold"]["above"] == 5
    async with store.transaction() as session:
        state = await session.get(ThresholdStateRow, ("queue-alert", 0))
    assert state is not None
    assert (state.armed, state.generation, state.last_value) == (False, 1, 8)
    assert state.last_run_id == runs[1][0].id


async def test_a_value_that_is_not_a_number_is_recorded_and_changes_nothing(
    store: Store, metrics: tuple[Metrics, ConnectorRegistry]
) -> None:
    api, registry = metrics
    clock = ManualClock()
    scheduler = Scheduler(store, {"queue-alert": workflow(QUEUE_ALERT)}, clock, connectors=registry)
    [entry] = scheduler.thresholds
    api.depth = "lots"
    result = await scheduler.check_threshold(entry)
    assert result.error is not None and "not a number" in result.error
    clock.advance(60)
    api.depth = "12"  # numeric text is a number
    assert (await scheduler.check_threshold(entry)).transition is Transition.FIRE
    assert len(await runs_of(store, "queue-alert")) == 1


async def test_three_schedulers_check_once_per_interval_and_fire_once(
    database: Database, metrics: tuple[Metrics, ConnectorRegistry]
) -> None:
    api, registry = metrics
    api.depth = 10
    clock = ManualClock()
    definitions = {"queue-alert": workflow(QUEUE_ALERT)}
    stores = [database.store() for _ in range(3)]
    try:
        schedulers = [Scheduler(s, definitions, clock, connectors=registry) for s in stores]
        for _ in range(3):
            results = await asyncio.gather(
                *(s.check_threshold(s.thresholds[0]) for s in schedulers)
            )
            assert sum(r.checked for r in results) == 1  # the others saw a fresh check
            clock.advance(30)  # half an interval: nobody checks again yet
            assert not any([(await s.check_threshold(s.thresholds[0])).checked for s in schedulers])
            clock.advance(30)
        assert api.calls == 3
        assert len(await runs_of(stores[0], "queue-alert")) == 1
    finally:
        for s in stores:
            await s.dispose()


async def test_a_fire_whose_state_was_not_recorded_finds_its_run_instead_of_starting_another(
    store: Store, metrics: tuple[Metrics, ConnectorRegistry]
) -> None:
    # A checker that died between starting the run and recording the fire leaves the trigger
    # armed at the same generation; the next crossing check must not start a second run.
    api, registry = metrics
    clock = ManualClock()
    scheduler = Scheduler(store, {"queue-alert": workflow(QUEUE_ALERT)}, clock, connectors=registry)
    [entry] = scheduler.thresholds
    api.depth = 6
    first = await scheduler.check_threshold(entry)
    async with store.transaction() as session:
        state = await session.get(ThresholdStateRow, ("queue-alert", 0))
        assert state is not None
        state.armed = True  # as if the fire was never recorded
    clock.advance(60)
    second = await scheduler.check_threshold(entry)
    assert second.transition is Transition.FIRE
    assert first.started is not None and second.started is not None
    assert (second.started.run_id, second.started.duplicate) == (first.started.run_id, True)
    assert len(await runs_of(store, "queue-alert")) == 1


def stock_workflow() -> Workflow:
    return workflow(
        """
        name: low-stock
        triggers:
          - threshold:
              every: 5m
              sql: {connection: warehouse, query: "select level from stock where sku = :sku",
                    params: {sku: A-1}}
              below: 10
              clear: 20
        steps:
          - id: s
            set: {level: "{{ input.value }}"}
        """
    )


async def test_a_sql_threshold_below_fires_and_rearms_through_a_real_database(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        db.execute("create table stock (sku text primary key, level integer)")
        db.execute("insert into stock values ('A-1', 50)")

    def set_level(level: int) -> None:
        with sqlite3.connect(path) as db:
            db.execute("update stock set level = ? where sku = 'A-1'", (level,))

    raw = {"warehouse": {"type": "sql", "url": f"sqlite+aiosqlite:///{path}"}}
    clock = ManualClock()
    async with ConnectorRegistry.build(raw, env={}) as registry:
        scheduler = Scheduler(store, {"low-stock": stock_workflow()}, clock, connectors=registry)
        [entry] = scheduler.thresholds
        outcomes = []
        for level in [50, 8, 15, 25, 3]:
            set_level(level)
            outcomes.append((await scheduler.check_threshold(entry)).transition.value)
            clock.advance(300)
    assert outcomes == ["stay", "fire", "stay", "rearm", "fire"]
    runs = await runs_of(store, "low-stock")
    assert [run_input(run)["value"] for run, _ in runs] == [8, 3]


async def test_the_scheduler_runs_the_check_on_an_interval_job(
    store: Store, metrics: tuple[Metrics, ConnectorRegistry]
) -> None:
    api, registry = metrics
    api.depth = 6
    scheduler = Scheduler(
        store, {"queue-alert": workflow(QUEUE_ALERT)}, ManualClock(), connectors=registry
    )
    await scheduler.start()
    try:
        [job] = [j for j in scheduler.jobs() if j.id != "retention"]  # the hourly purge
        assert job.id == "threshold:queue-alert:0"
        assert job.trigger.interval.total_seconds() == 60
        await job.func(*job.args)  # what APScheduler runs every minute
    finally:
        await scheduler.stop()
    assert api.calls == 1
    assert len(await runs_of(store, "queue-alert")) == 1


def test_switchboard_check_reports_a_bad_trigger_once_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\n"
        "triggers:\n"
        "  - command: bad\n"
        "  - threshold: {every: 1m, above: 3}\n"
        "  - schedul: {cron: '0 9 * * *'}\n"
        "steps: [{id: s, set: {a: 1}}]\n"
    )
    loaded, errors = load_file(path, CheckContext())
    assert loaded is None
    lines = [str(error) for error in errors]
    assert len(lines) == 2, lines
    assert lines[0] == (
        f"{path}:4: triggers[1].threshold: a threshold needs exactly one source: http or sql"
    )
    assert lines[1].startswith(f"{path}:5: triggers[2]: a trigger needs exactly one kind key: ")
    assert "schedule, webhook, threshold" in lines[1]
