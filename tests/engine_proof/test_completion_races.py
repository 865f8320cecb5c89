"""Completion when the run moved on meanwhile: the job is handed back, never half-recorded.

A run can change under a running job (a parallel timer job of the same run, an
approval decision, a cancel). The engine then records nothing for this
execution and puts the job back in the queue; it must do so on both backends
without waiting on itself (SQLite has one writer lock per process).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from tests.support.clock import ManualClock
from tests.support.engines import make_engine, run_row, start, workflow
from tests.support.stores import Database
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

TWO_STEPS = """
    name: moved
    steps:
      - id: a
        call:
          function: "tests.engine_proof.test_completion_races:meanwhile"
          args: {run_id: "{{ run.id }}"}
      - id: b
        set: {y: 2}
"""
DATABASES: dict[str, Database] = {}
BUMPED: set[str] = set()


async def meanwhile(run_id: str) -> dict[str, int]:
    """While step `a` runs, someone else changes its run (once), as a parallel job would."""
    if run_id not in BUMPED:
        BUMPED.add(run_id)
        other = DATABASES[run_id].store()
        try:
            async with other.transaction() as session:
                await session.execute(
                    update(RunRow).where(RunRow.id == run_id).values(version=RunRow.version + 1)
                )
        finally:
            await other.dispose()
    return {"x": 1}


async def test_a_run_changed_meanwhile_requeues_the_job(store: Store, database: Database) -> None:
    clock = ManualClock()
    engine = make_engine(store, clock, workflow(TWO_STEPS))
    run_id = await start(engine, "moved")
    DATABASES[run_id] = database
    [job] = await engine.claim(10)
    async with asyncio.timeout(10):  # a self-deadlock shows as a timeout, not a hung suite
        await engine.execute(job)
    async with store.transaction() as session:
        row = await session.get(JobRow, job.id)
        completed = await session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.action == "step.completed")
        )
    assert row is not None
    assert (row.status, row.lease_owner) == ("queued", None), "handed back to the queue"
    assert completed == 0, "nothing recorded for the execution that lost the race"
    assert "a" not in (await run_row(store, run_id)).context["steps"]
    # The next claim runs it again against the run as it is now, and the run goes on.
    [again] = await engine.claim(10)
    assert (again.id, again.attempt) == (job.id, 2)
    second = await engine.execute(again)
    assert second is not None, "the next step, due at once, comes back leased to us"
    assert await engine.claim(10) == [], "and nobody else can claim it meanwhile"
    assert await engine.execute(second) is None
    run = await run_row(store, run_id)
    assert run.status == "succeeded"
    assert run.context["steps"] == {"a": {"x": 1}, "b": {"y": 2}}
