"""A cancel that lands while a step's completion commits must not deadlock (PostgreSQL).

Seen in the cancel tests' logs: ``deadlock detected`` in the completion's ``SELECT runs …
FOR UPDATE``. The completion locked its job row, then the run; the cancel locked the run,
then (ending it) the run's jobs. The interleaving is made certain here with a third
transaction holding the run row: the cancel queues on it first, the completion second,
and both must then finish, one after the other. SQLite has a single writer: no deadlock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.support.engines import make_engine, run_row, start, workflow
from workflows.lifecycle import ENDED_JOB
from workflows.ports import SystemClock
from workflows.runs import cancel_run
from workflows.store import Store
from workflows.tables import JobRow, RunRow

TWO_STEPS = workflow("""
    name: two
    steps:
      - {id: a, quiet: true, set: {done: true}}
      - {id: b, quiet: true, wait: {duration: 1h}}
""")


async def blocked_by(store: Store, pid: int, count: int) -> None:
    """Until ``count`` backends wait, directly or behind another waiter, on backend ``pid``
    (a second waiter on a row waits on the first, which holds the tuple lock)."""
    query = text("select pid, pg_blocking_pids(pid) from pg_stat_activity")
    for _ in range(200):
        async with store.read() as session:
            waits = {row[0]: set(row[1]) for row in await session.execute(query) if row[1]}
        behind, grew = {pid}, True
        while grew:
            more = {waiter for waiter, on in waits.items() if on & behind} - behind
            behind, grew = behind | more, bool(more)
        if len(behind) - 1 >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} transactions queued on the run row")


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_cancel_during_a_step_completion_does_not_deadlock(store: Store) -> None:
    engine = make_engine(store, SystemClock(), TWO_STEPS)
    run_id = await start(engine, "two")
    (job,), _ = await engine.queue.claim(1)
    tasks: list[asyncio.Task[Any]] = []
    async with store.transaction() as holder:
        pid = await holder.scalar(text("select pg_backend_pid()"))
        await holder.execute(select(RunRow.id).where(RunRow.id == run_id).with_for_update())
        tasks.append(asyncio.create_task(cancel_run(store, run_id, "U0ALICE", engine.clock.now())))
        await blocked_by(store, pid, 1)
        tasks.append(asyncio.create_task(engine.execute(job)))
        await blocked_by(store, pid, 2)
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert errors == [], errors
    run = await run_row(store, run_id)
    assert run.status == "cancelled" and "b" not in run.context["steps"]
    async with store.read() as session:
        live = await session.scalars(
            select(JobRow.kind).where(
                JobRow.run_id == run_id, JobRow.status.in_(("queued", "leased"))
            )
        )
        assert list(live) == [ENDED_JOB]  # only the chat side of the end is left to run
