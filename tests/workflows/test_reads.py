"""Reads on the ack path neither wait for nor take the write lock (both backends).

A listener that only looks something up (``/switchboard status``, a card's run) must
answer while a long write holds SQLite's single writer slot: on SQLite our writers
queue in-process, and a read queued behind them would make Slack's ack wait on a
worker's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.support.clock import ManualClock
from tests.support.engines import make_engine, start, workflow
from workflows.routing import labels_for, shadow_assignment_of
from workflows.runs import get_run
from workflows.store import Store

WF = workflow("""
    name: lookup
    steps:
      - {id: a, quiet: true, set: {x: 1}}
""")
READ_BUDGET_SECONDS = 2.0


@contextlib.asynccontextmanager
async def writer_holding_the_lock(store: Store) -> AsyncIterator[None]:
    """A write transaction kept open (a worker's commit in flight) until the block ends."""
    entered, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with store.transaction():
            entered.set()
            await done.wait()

    task = asyncio.create_task(hold())
    await asyncio.wait_for(entered.wait(), timeout=5)
    try:
        yield
    finally:
        done.set()
        await task


async def test_lookups_answer_while_a_writer_holds_the_lock(store: Store) -> None:
    engine = make_engine(store, ManualClock(), WF)
    run_id = await start(engine, "lookup")
    async with writer_holding_the_lock(store):
        run = await asyncio.wait_for(get_run(store, run_id), READ_BUDGET_SECONDS)
        shadow = await asyncio.wait_for(shadow_assignment_of(store, run_id), READ_BUDGET_SECONDS)
        labels = await asyncio.wait_for(
            labels_for(store, engine.workflows, "no-such-assignment"), READ_BUDGET_SECONDS
        )
    assert (run.id, run.workflow) == (run_id, "lookup")
    assert (shadow, labels) == (None, [])
