"""Group commit of step completions: many finished steps, one transaction.

A finished step writes four things together: its job closed (only if this worker
still holds the lease), its run's new state (only if nobody moved the run on),
its audit records and its successor jobs. Written one step per transaction, the
statements and commits, not the steps, set the pace (each costs a round trip
through the driver; SQLite has one writer). So completions queue here while a
transaction is open and the next transaction takes all of them: a handful of
statements per batch, whatever its size, every check still per step.

A batch that fails is retried one completion at a time (``GroupCommit``), so one
bad record cannot sink the others; a database outage reaches every waiting step
as its own error (its job stays leased and is run again).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from workflows import audit, lifecycle
from workflows.group_commit import GroupCommit
from workflows.jobs import ITEM_JOB
from workflows.language.spec import StepBase
from workflows.language.steps.approve import ApproveStep
from workflows.language.steps.ask import AskStep
from workflows.language.workflow import Workflow
from workflows.ports import Clock
from workflows.steps.base import StepOutcome
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

_JOBS = cast(Table, JobRow.__table__)
_RUNS = cast(Table, RunRow.__table__)
_AUDIT = cast(Table, AuditRow.__table__)


class Landed(enum.Enum):
    DONE = "done"
    """Recorded: the run moved on."""
    LEASE_LOST = "lease lost"
    """Another worker took the job over; its execution records the result."""
    RUN_MOVED = "run moved"
    """The run changed meanwhile (a cancel, a signal): the job is queued to run again."""


@dataclass
class Completion:
    job_id: int
    attempt: int
    run_id: str
    run_version: int
    run_values: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    """Audit records (``audit.record``)."""
    new_jobs: list[dict[str, Any]] = field(default_factory=list)
    """Job rows to insert, all with the same columns (``job_values``)."""


@dataclass(frozen=True)
class Result:
    landed: Landed
    job_ids: tuple[int, ...] = ()
    """Ids of ``new_jobs``, in order (when ``landed`` is DONE)."""


def job_values(
    run_id: str,
    step_id: str,
    kind: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
    *,
    leased_to: str | None = None,
    lease_expires_at: datetime | None = None,
) -> dict[str, Any]:
    """A new job's columns: queued, or already leased to the worker that will run it next."""
    return {
        "run_id": run_id,
        "step_id": step_id,
        "kind": kind,
        "payload": payload or {},
        "status": "leased" if leased_to else "queued",
        "due_at": due_at,
        "attempt": 1 if leased_to else 0,
        "failures": 0,
        "lease_owner": leased_to,
        "lease_expires_at": lease_expires_at,
        "created_at": now,
        "started_at": now if leased_to else None,
    }


class Committer:
    """Commits completions in batches (``GroupCommit``); one per engine."""

    def __init__(self, store: Store, clock: Clock, owner: str) -> None:
        self.clock = clock
        self.owner = owner
        self._group: GroupCommit[Completion, Result] = GroupCommit(store, self._apply)

    async def commit(self, completion: Completion) -> Result:
        """Record ``completion``; returns once its batch is committed (or raises its error)."""
        return await self._group.submit(completion)

    async def _apply(self, session: AsyncSession, batch: Sequence[Completion]) -> list[Result]:
        now = self.clock.now()
        conn = await session.connection()
        # Runs before jobs, the order a run's ending takes (cancel: the run, then its jobs):
        # job-then-run deadlocked a completion against a cancel on PostgreSQL.
        current = await _run_versions(conn, sorted({c.run_id for c in batch}))
        ours = await self._close_jobs(conn, batch, now)
        results: dict[int, Result] = {}
        landing: list[Completion] = []
        moved: list[int] = []
        for c in batch:
            if c.job_id not in ours:
                results[c.job_id] = Result(Landed.LEASE_LOST)
            elif current.get(c.run_id) != c.run_version:
                results[c.job_id] = Result(Landed.RUN_MOVED)
                moved.append(c.job_id)
            else:
                landing.append(c)
        if moved:  # run it again on the run as it is now
            await conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id.in_(moved))
                .values(status="queued", due_at=now, lease_owner=None, finished_at=None)
            )
        await _update_runs(conn, landing)
        records = [r for c in landing for r in c.records]
        if records:
            await conn.execute(insert(_AUDIT), records)
        new_ids = await _insert_jobs(conn, [j for c in landing for j in c.new_jobs])
        # After the inserts: whatever an ended run still had queued is dropped with the rest.
        await lifecycle.close_owned(conn, [e for c in landing if (e := _ending(c))], now)
        for c in landing:
            ids, new_ids = new_ids[: len(c.new_jobs)], new_ids[len(c.new_jobs) :]
            results[c.job_id] = Result(Landed.DONE, tuple(ids))
        return [results[c.job_id] for c in batch]

    async def _close_jobs(
        self, conn: AsyncConnection, batch: Sequence[Completion], now: datetime
    ) -> set[int]:
        """Mark done the jobs this worker still holds at the attempt it ran; return their ids."""
        closed = await conn.execute(
            update(_JOBS)
            .where(
                tuple_(_JOBS.c.id, _JOBS.c.attempt).in_([(c.job_id, c.attempt) for c in batch]),
                _JOBS.c.status == "leased",
                _JOBS.c.lease_owner == self.owner,
            )
            .values(status="done", finished_at=now, lease_owner=None, error=None)
            .returning(_JOBS.c.id)
        )
        return {row.id for row in closed}


async def _run_versions(conn: AsyncConnection, run_ids: list[str]) -> dict[str, int]:
    if not run_ids:
        return {}
    query = select(_RUNS.c.id, _RUNS.c.version).where(_RUNS.c.id.in_(run_ids)).order_by(_RUNS.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # held to commit: the versions stay as read
    return {row.id: row.version for row in await conn.execute(query)}


async def _update_runs(conn: AsyncConnection, landing: list[Completion]) -> None:
    """One executemany per set of columns (SQLite holds the write lock; PostgreSQL the rows)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for c in landing:
        columns = tuple(sorted(c.run_values))
        groups.setdefault(columns, []).append(
            {f"v_{k}": v for k, v in c.run_values.items()} | {"v__id": c.run_id}
        )
    for columns, params in groups.items():
        await conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id == bindparam("v__id"))
            .values({k: bindparam(f"v_{k}") for k in columns}),
            params,
        )


async def _insert_jobs(conn: AsyncConnection, jobs: list[dict[str, Any]]) -> list[int]:
    if not jobs:
        return []
    rows = await conn.execute(
        insert(_JOBS).returning(_JOBS.c.id, sort_by_parameter_order=True), jobs
    )
    return [row.id for row in rows]


def _ending(completion: Completion) -> lifecycle.Ending | None:
    status = completion.run_values.get("status")
    if status not in lifecycle.ENDINGS:
        return None
    return lifecycle.Ending(completion.run_id, str(status), "switchboard")


def ending_status(step: StepBase, outcome: StepOutcome) -> str:
    """How a run ends when this step is its last: an approval that did not approve ends
    it ``rejected`` (or ``timed_out`` when nobody decided), anything else ``succeeded``."""
    if isinstance(step, AskStep):  # an unanswered question that ends the run
        return "timed_out" if outcome.output.get("status") == "timed_out" else "succeeded"
    if not isinstance(step, ApproveStep):
        return "succeeded"
    decided = outcome.output.get("outcome")
    if decided in (None, "approved"):
        return "succeeded"
    return "timed_out" if decided == "timed_out" else "rejected"


def transition(
    run: RunRow, workflow: Workflow, step: StepBase, outcome: StepOutcome, now: datetime
) -> tuple[str | None, dict[str, Any]]:
    """Where the run goes after this outcome: (next step or None, run columns to set)."""
    values: dict[str, Any] = {"version": run.version + 1, "updated_at": now}
    if outcome.output or not outcome.waiting:
        steps = dict(run.context.get("steps", {}))
        steps[step.id] = dict(steps.get(step.id) or {}) | outcome.output
        values["context"] = dict(run.context) | {"steps": steps}
    if outcome.waiting:
        return None, values | {"status": "waiting", "current_step": step.id}
    next_id = (
        outcome.next_step
        if outcome.overrides_next
        else (step.goto or workflow.next_step_id(step.id))
    )
    values["current_step"] = next_id or step.id
    if next_id is None:
        return None, values | {"status": ending_status(step, outcome), "finished_at": now}
    if outcome.due_at is not None and outcome.due_at > now:
        return next_id, values | {"status": "waiting"}
    return next_id, values | {"status": "running"}


@dataclass(frozen=True)
class Lease:
    """Who a successor due at once is leased to (this worker runs it inline), and until when."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class NextStep:
    step_id: str
    due: datetime
    inline: bool
    """Due now: inserted already leased to this worker, which runs it next."""


@dataclass(frozen=True)
class StepDone:
    completion: Completion
    next_step: NextStep | None


def completion_for(
    job_id: int,
    attempt: int,
    run: RunRow,
    workflow: Workflow,
    step: StepBase,
    outcome: StepOutcome,
    detail: dict[str, Any],
    now: datetime,
    lease: Lease,
) -> StepDone:
    """Everything a finished step writes: its run's new state, audit records, timers and
    its successor (leased to us when due at once: no claim round trip, no wait)."""
    next_id, values = transition(run, workflow, step, outcome, now)
    if run.channel_id and run.root_ts:
        values |= {"channel_id": run.channel_id, "root_ts": run.root_ts}
    records = [_record(run, step.id, outcome.action, detail, now)]
    new_jobs = [
        job_values(run.id, step.id, "timer", t.due_at, now, {"timer": t.name} | t.payload)
        for t in outcome.timers
    ] + [job_values(run.id, step.id, ITEM_JOB, now, now, item) for item in outcome.fan_out]
    follow = None
    if next_id is not None:
        due = max(outcome.due_at or now, now)
        follow = NextStep(next_id, due, inline=due <= now)
        new_jobs.append(
            job_values(
                run.id,
                next_id,
                "step",
                due,
                now,
                leased_to=lease.owner if follow.inline else None,
                lease_expires_at=lease.until if follow.inline else None,
            )
        )
    elif values.get("status") in lifecycle.ENDINGS:
        records.append(_record(run, None, f"run.{values['status']}", {}, now))
    completion = Completion(job_id, attempt, run.id, run.version, values, records, new_jobs)
    return StepDone(completion, follow)


def _record(
    run: RunRow, step_id: str | None, action: str, detail: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return audit.record(
        run_id=run.id, step_id=step_id, actor="switchboard", action=action, detail=detail, now=now
    )
