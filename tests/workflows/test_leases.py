"""Leases on both backends: a worker renews only the jobs it is really running.

A busy worker (a long step in flight) must not keep alive the lease of a job whose
task is gone (cancelled, crashed outside the step guard, lost across a database
outage): another worker takes that job over within about one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import select, update

from tests.support.engines import run_row, start, workflow
from workflows.engine import Engine
from workflows.null_chat import NullChat
from workflows.ports import SystemClock
from workflows.store import Store
from workflows.tables import JobRow
from workflows.worker import Worker

LEASE_SECONDS = 2.0
EVENTS: dict[str, asyncio.Event] = {}
"""``held``: set by the busy step once it runs; it then waits for ``released``. Made per test
(an event belongs to the event loop it first waited in)."""


async def hold() -> dict[str, bool]:
    """A long step: keeps its worker busy (and its lease renewed) until the test lets go."""
    EVENTS["held"].set()
    await EVENTS["released"].wait()
    return {"held": True}


BUSY = workflow("""
    name: busy
    steps:
      - id: hold
        quiet: true
        timeout: 60s
        call: {function: "tests.workflows.test_leases:hold"}
""")
QUICK = workflow("""
    name: quick
    steps:
      - {id: a, quiet: true, set: {done: true}}
""")


def lease_engine(store: Store, owner: str) -> Engine:
    return Engine(
        store=store,
        workflows={BUSY.name: BUSY, QUICK.name: QUICK},
        chat=NullChat(),
        clock=SystemClock(),
        owner=owner,
        lease_seconds=LEASE_SECONDS,
    )


@contextlib.asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[Worker]:
    worker = Worker(engine, concurrency=4, poll_seconds=0.1, seal_seconds=30)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        EVENTS["released"].set()
        worker.stop()
        await asyncio.wait_for(task, timeout=10)


async def orphan_job(store: Store, engine: Engine, owner: str) -> str:
    """A queued job leased to ``owner`` in the database with no task running it anywhere."""
    run_id = await start(engine, "quick")
    now = engine.clock.now()
    async with store.transaction() as session:
        await session.execute(
            update(JobRow)
            .where(JobRow.run_id == run_id)
            .values(
                status="leased",
                lease_owner=owner,
                attempt=1,
                lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
                started_at=now,
            )
        )
    return run_id


async def test_a_busy_worker_does_not_renew_a_job_whose_task_died(store: Store) -> None:
    EVENTS.update(held=asyncio.Event(), released=asyncio.Event())
    busy_engine = lease_engine(store, "worker-busy")
    other_engine = lease_engine(store, "worker-other")
    busy_run = await start(busy_engine, "busy")
    async with running(busy_engine):
        await asyncio.wait_for(EVENTS["held"].wait(), timeout=10)
        orphan_run = await orphan_job(store, busy_engine, "worker-busy")
        async with running(other_engine):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2 * LEASE_SECONDS
            while (await run_row(store, orphan_run)).status != "succeeded":
                assert loop.time() < deadline, "orphaned job still leased after two leases"
                await asyncio.sleep(0.1)
            async with store.read() as session:
                busy_job = await session.scalar(select(JobRow).where(JobRow.run_id == busy_run))
            # The live step's lease was renewed: it was not taken over meanwhile.
            assert busy_job is not None
            assert (busy_job.status, busy_job.lease_owner) == ("leased", "worker-busy")
    assert (await run_row(store, busy_run)).status == "succeeded"
