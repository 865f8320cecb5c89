"""Fan-out and join: each item of a ``foreach`` and each branch of a ``parallel`` is its own job.

The life of a fan-out (models ``workflows/language/steps/flow.py``, executors
``workflows/steps/flow.py``)::

    step job     evaluates the list (kept as steps.<id>.items), queues the first
                 `concurrency` item jobs with its result, in one commit; the run waits
    item jobs    run the inner step, with its own retries (the inner step's policy);
                 exempt from "one leased job per run", so they run at once
    item done    ONE transaction: the job closed with its result in its row
                 (payload.result / jobs.error), the lane's next item queued
                 (index + concurrency), and, when the fan-out is decided, the join
    join         a signal job for the step: it reads the results in index order and
                 completes the step the usual way (lease and run-version checks)

A durable item is "look up the recorded result, else run and record it": a finished
item's job is done, so no claim runs it again, and its successor was queued in the same
commit, so a worker killed at any point loses nothing. An item in flight when its worker
died is run again after its lease (its side effects carry per-item keys). Item
completions of one run are serialised by a lock on the run's row (PostgreSQL; SQLite has
one writer), so exactly one of them queues the join.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit
from workflows.jobs import ITEM_JOB, ClaimedJob
from workflows.language.steps.flow import ForeachStep, ParallelStep
from workflows.lifecycle import LIVE
from workflows.store import Store
from workflows.tables import JobRow, RunRow

FanStep = ForeachStep | ParallelStep
JOIN = "join"
"""Payload key of the join signal: the fan-out pass it joins."""


@dataclass(frozen=True)
class ItemResult:
    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None


def first_items(step: FanStep, total: int, pass_id: str) -> list[dict[str, Any]]:
    """Payloads of the item jobs queued with the step's result."""
    width = step.foreach.concurrency if isinstance(step, ForeachStep) else total
    return [{"pass": pass_id, "index": i} for i in range(min(width, total))]


async def recorded(store: Store, run_id: str, step_id: str, pass_id: str) -> dict[int, JobRow]:
    """The finished items of a pass, by index."""
    async with store.read() as session:
        rows = await _items(session, run_id, step_id, ("done", "failed"))
    return {row.payload["index"]: row for row in rows if row.payload.get("pass") == pass_id}


class ItemRecorder:
    """Closes an item job with its result, queues the lane's next item and maybe the join."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner

    async def record(self, job: ClaimedJob, step: FanStep, result: ItemResult, clock: Any) -> bool:
        now = clock.now()
        async with self.store.transaction() as session:
            run = await _locked_run(session, job.run_id, self.store.is_sqlite)
            if not await self._close(session, job, result, now):
                return False  # another worker took the item over; it records it
            live = run is not None and run.status in LIVE and run.current_step == step.id
            if live and run is not None:
                for payload in _successors(step, run, job.payload):
                    session.add(JobRow.queued(run.id, step.id, ITEM_JOB, now, now, payload))
                if await _decided(session, step, run, job, result):
                    join = {JOIN: job.payload["pass"]}
                    session.add(JobRow.queued(run.id, step.id, "signal", now, now, join))
            detail: dict[str, Any] = {"index": job.payload["index"], "attempt": job.attempt}
            if result.ok:
                detail["output"] = audit.digest(result.output)
            else:
                detail["error"] = result.error
            await audit.append(
                session,
                run_id=job.run_id,
                step_id=step.branch(int(job.payload["index"])).id,
                actor="switchboard",
                action="item.completed" if result.ok else "item.failed",
                detail=detail,
                now=now,
            )
        return True

    async def _close(
        self, session: AsyncSession, job: ClaimedJob, result: ItemResult, now: Any
    ) -> bool:
        payload = dict(job.payload) | ({"result": result.output} if result.ok else {})
        closed = await session.execute(
            update(JobRow)
            .where(
                JobRow.id == job.id,
                JobRow.status == "leased",
                JobRow.lease_owner == self.owner,
                JobRow.attempt == job.attempt,
            )
            .values(
                status="done" if result.ok else "failed",
                payload=payload,
                finished_at=now,
                lease_owner=None,
                error=result.error,
            )
        )
        return bool(closed.rowcount == 1)  # type: ignore[attr-defined]


async def _locked_run(session: AsyncSession, run_id: str, is_sqlite: bool) -> RunRow | None:
    query = select(RunRow).where(RunRow.id == run_id)
    if not is_sqlite:
        query = query.with_for_update()  # item completions of a run, one at a time
    return (await session.scalars(query)).first()


def _total(step: FanStep, run: RunRow) -> int:
    if isinstance(step, ParallelStep):
        return len(step.parallel.steps)
    return len(run.context.get("steps", {}).get(step.id, {}).get("items", []))


def _successors(step: FanStep, run: RunRow, payload: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(step, ForeachStep):
        return []  # every branch was queued at once
    following = int(payload["index"]) + step.foreach.concurrency
    return [payload | {"index": following}] if following < _total(step, run) else []


async def _decided(
    session: AsyncSession, step: FanStep, run: RunRow, job: ClaimedJob, result: ItemResult
) -> bool:
    """Is the fan-out decided now (so this completion queues the join), and not joined yet?"""
    pass_id = job.payload["pass"]
    signals = await session.scalars(
        select(JobRow.payload).where(
            JobRow.run_id == run.id, JobRow.step_id == step.id, JobRow.kind == "signal"
        )
    )
    if any(payload.get(JOIN) == pass_id for payload in signals):
        return False
    if isinstance(step, ForeachStep):
        early = not result.ok and step.foreach.on_failure == "fail_fast"
    else:
        early = result.ok if step.parallel.join == "first_success" else not result.ok
    if early:
        return True
    # Counted in SQL (no payloads loaded): each item has one job, so rows are items.
    finished = await session.scalar(
        select(func.count()).where(
            JobRow.run_id == run.id,
            JobRow.step_id == step.id,
            JobRow.kind == ITEM_JOB,
            JobRow.status.in_(("done", "failed")),
            JobRow.payload["pass"].as_string() == pass_id,
        )
    )
    return (finished or 0) >= _total(step, run)


async def _items(
    session: AsyncSession, run_id: str, step_id: str, statuses: tuple[str, ...]
) -> list[JobRow]:
    query = select(JobRow).where(
        JobRow.run_id == run_id,
        JobRow.step_id == step_id,
        JobRow.kind == ITEM_JOB,
        JobRow.status.in_(statuses),
    )
    return list((await session.scalars(query)).all())
