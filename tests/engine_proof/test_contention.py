"""Several engines (own owners, own connection pools) race for the same due jobs.

Every claim is recorded as (job id, attempt): none may appear twice, and with
leases that never expire each job is claimed once and each step of each run
executes exactly once. On PostgreSQL this is ``FOR UPDATE SKIP LOCKED``; on
SQLite it is one writer at a time across processes (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from tests.support.clock import ManualClock
from tests.support.engines import make_engine, workflow
from tests.support.stores import Database
from workflows.engine import ClaimedJob, Engine
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import JobRow, RunRow
from workflows.worker import Worker

pytestmark = pytest.mark.slow

ENGINES = 4
RUNS = 150
STEPS = ("one", "two", "three")
EXECUTED: Counter[tuple[str, str]] = Counter()

NOOP = """
    name: noop
    steps:
""" + "".join(
    f"""
      - id: {step}
        quiet: true
        call:
          function: "tests.engine_proof.test_contention:count"
          args: {{run: "{{{{ run.id }}}}", step: {step}}}
"""
    for step in STEPS
)


def count(run: str, step: str) -> dict[str, bool]:
    EXECUTED[(run, step)] += 1
    return {"ok": True}


class RecordingWorker(Worker):
    """The real worker, noting each job it was handed before running it."""

    def __init__(self, engine: Engine, claims: list[tuple[str, int, int]]) -> None:
        super().__init__(engine, concurrency=8, poll_seconds=0.02)
        self.claims = claims

    async def _execute(self, job: ClaimedJob) -> None:
        # Record every execution, including the steps a worker runs inline after a claim.
        next_job: ClaimedJob | None = job
        while next_job is not None:
            self.claims.append((self.engine.owner, next_job.id, next_job.attempt))
            next_job = await self.engine.execute(next_job)


async def test_racing_engines_never_run_a_job_twice(database: Database) -> None:
    wf = workflow(NOOP)
    clock = ManualClock()
    stores = [database.store(pool_size=4) for _ in range(ENGINES)]
    claims: list[tuple[str, int, int]] = []
    try:
        engines = [
            make_engine(store, clock, wf, owner=f"engine-{i}") for i, store in enumerate(stores)
        ]
        run_ids = [
            (await start_run(stores[0], StartRequest(wf, "test"), clock.now())).run_id
            for _ in range(RUNS)
        ]
        EXECUTED.clear()
        workers = [RecordingWorker(engine, claims) for engine in engines]
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        started = time.monotonic()
        try:
            await _until_succeeded(stores[0], RUNS, deadline=60)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        async with stores[0].transaction() as session:
            attempts = Counter((await session.scalars(select(JobRow.attempt))).all())
    finally:
        for store in stores:
            await store.dispose()

    per_claim = Counter((job_id, attempt) for _owner, job_id, attempt in claims)
    assert [key for key, n in per_claim.items() if n > 1] == [], "a job attempt ran twice"
    assert len(per_claim) == RUNS * len(STEPS)
    assert attempts == {1: RUNS * len(STEPS)}, "every job claimed exactly once"
    assert {(run_id, step): 1 for run_id in run_ids for step in STEPS} == EXECUTED
    by_engine = Counter(owner for owner, _job, _attempt in claims)
    print(
        f"\n[{database.backend}] {len(claims)} jobs over {ENGINES} engines in {elapsed:.1f}s: "
        f"{dict(sorted(by_engine.items()))}"
    )
    assert len(by_engine) >= 2, f"the engines did not actually compete: {by_engine}"


async def _until_succeeded(store: Store, runs: int, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        async with store.transaction() as session:
            done = await session.scalar(
                select(func.count()).select_from(RunRow).where(RunRow.status == "succeeded")
            )
        if done == runs:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {done} of {runs} runs finished in {deadline}s")
