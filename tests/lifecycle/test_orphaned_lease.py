"""Issue 16: "orphaned leases are renewed forever", through the running bot. The bot's worker
is busy with a long step (its lease renewed) while a step job of another run is leased to
this same worker with no task behind it (its task died): that lease lapses and the job is
taken over within about one lease, so the run finishes. The queue-level test with two
workers is ``tests/workflows/test_leases.py``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from tests.versions.support import poll, write
from workflows.tables import JobRow, RunRow

LEASE_SECONDS = 2.0
EVENTS: dict[str, asyncio.Event] = {}


async def hold() -> dict[str, bool]:
    """A long step: the worker stays busy (renewing its lease) until the test lets go."""
    EVENTS["held"].set()
    await EVENTS["released"].wait()
    return {"held": True}


BUSY = """
name: busy
triggers: [{command: busy}]
steps:
  - id: hold
    timeout: 60s
    call: {function: "tests.lifecycle.test_orphaned_lease:hold"}
"""
NAP = """
name: nap
triggers: [{command: nap}]
steps:
  - id: pause
    wait: {duration: 1h}
  - id: after
    set: {woke: true}
"""


async def run_of(harness: Harness, workflow: str) -> RunRow:
    async with harness.runtime.store.read() as session:
        return (await session.scalars(select(RunRow).where(RunRow.workflow == workflow))).one()


async def orphan_the_next_step(harness: Harness, run_id: str) -> None:
    """The job of ``after`` (due in an hour) as a task that died would leave it: leased to
    this worker, due now, nothing running it."""
    now = harness.runtime.engine.clock.now()
    async with harness.runtime.store.transaction() as session:
        await session.execute(
            update(JobRow)
            .where(JobRow.run_id == run_id, JobRow.step_id == "after", JobRow.status == "queued")
            .values(
                status="leased",
                lease_owner=harness.runtime.engine.owner,
                attempt=1,
                due_at=now,
                lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
                started_at=now,
            )
        )


async def test_a_busy_bot_takes_over_a_job_whose_task_died_within_a_lease(
    database: Database, tmp_path: Path
) -> None:
    EVENTS.update(held=asyncio.Event(), released=asyncio.Event())
    write(tmp_path, BUSY, "busy.yaml")
    write(tmp_path, NAP, "nap.yaml")
    async with running_bot(
        database, workflows_dir=tmp_path, SWITCHBOARD_LEASE_SECONDS=LEASE_SECONDS
    ) as harness:
        try:
            await harness.slack.slash_command("alice", "general", "busy")
            await asyncio.wait_for(EVENTS["held"].wait(), timeout=10)
            await harness.slack.slash_command("alice", "general", "nap")

            async def napping() -> RunRow | None:
                run = await run_of(harness, "nap")
                return run if run.status == "waiting" else None

            nap = await poll(harness, napping, 10, "the nap run never waited")
            await orphan_the_next_step(harness, nap.id)

            async def woke() -> RunRow | None:
                run = await run_of(harness, "nap")
                return run if run.status == "succeeded" else None

            # Under the bug the busy worker renewed the orphan's lease every lease/3, forever.
            done = await poll(
                harness, woke, 3 * LEASE_SECONDS, "the orphaned job was not taken over"
            )
            assert done.context["steps"]["after"] == {"woke": True}
            busy = await run_of(harness, "busy")
            assert busy.status == "running", "the live step's lease was renewed, not taken over"
        finally:
            EVENTS["released"].set()
        await poll(
            harness,
            lambda: _succeeded(harness, "busy"),
            10,
            "the busy run did not finish once released",
        )


async def _succeeded(harness: Harness, workflow: str) -> bool:
    return (await run_of(harness, workflow)).status == "succeeded"
