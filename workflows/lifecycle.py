"""What ending a run does to everything it owns: the one place that decides it.

A run ends ``succeeded``, ``failed``, ``rejected`` (an approval said no, or its
timeout rejected it), ``cancelled`` (someone ran ``/flow cancel``) or
``timed_out`` (an approval nobody decided in time, after escalation, with no
step mapped to ``timed_out``). Every place that ends a run calls ``close_owned``
in the transaction that sets the run's final status:

- ``workflows.runs.cancel_run`` (cancelled),
- ``workflows.completion`` when the last step finishes (succeeded, rejected, timed_out),
- ``workflows.jobs.JobQueue.fail`` when a step fails for good (failed).

A child run (started by a ``workflow`` step, ``workflows/subruns.py``) that ends queues
a signal for the live parent step waiting for it; a parent that ends other than by
succeeding cancels its live children here too (audited ``run.cancelled`` with the
parent's id), and they close what they own in turn.

In that same transaction its open approval gates and route assignments are
closed (``cancelled`` on a cancel, ``closed`` otherwise: nobody can decide any
more), its pending step, timer and signal jobs are dropped (``cancelled``, never
run), and one ``ended`` job is queued (none for a plain success that left nothing
open: nothing to tell). The engine runs that job for the finished
run (``workflows.ending_chat.EndingChat``): cards updated in place without buttons and the
thread told, both through the outbox under fixed keys, so a retried or re-run
``ended`` job updates instead of posting twice; then App Home is published again
for the requester and the approvers (``views.publish`` replaces the whole view,
so publishing twice is harmless).

A run a Workflow Builder step started (``function_runs``) has its ending recorded there
and always gets its ``ended`` job: that job completes the step at Slack, once
(``workflows/function_runs.py``).

A click on a finished run's card is refused with ``ended_note`` and changes
nothing (``workflows.approvals.decide``, ``workflows.routing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from workflows import audit
from workflows.audit import record as audit_record
from workflows.function_runs import mark_endings
from workflows.store import Store
from workflows.tables import AssignmentRow, AuditRow, GateRow, JobRow, RunRow, SubRunRow
from workflows.versions import SHORT

LIVE = ("running", "waiting")
ENDINGS = ("succeeded", "failed", "rejected", "cancelled", "timed_out")
"""Every final status of a run (``runs.status`` is String(16): keep them short)."""
ENDED_JOB = "ended"
"""The job kind that carries a run's end to chat (cards, thread, App Home)."""
ENDED_STEP = "_run"
"""The step id of ``ended`` jobs and of their outbox keys (the run as a whole)."""
OPEN_GATE = ("open",)
OPEN_ASSIGNMENT = ("open", "claimed", "shadow")
PENDING_JOBS = ("queued", "leased")

_GATES = cast(Table, GateRow.__table__)
_ASSIGNMENTS = cast(Table, AssignmentRow.__table__)
_JOBS = cast(Table, JobRow.__table__)
_RUNS = cast(Table, RunRow.__table__)
_SUB_RUNS = cast(Table, SubRunRow.__table__)
_AUDIT = cast(Table, AuditRow.__table__)


@dataclass(frozen=True)
class Ending:
    run_id: str
    status: str
    """One of ``ENDINGS``."""
    by: str
    """Who ended it: a user id (cancel) or ``switchboard``."""


def closed_status(ending: str) -> str:
    """What an open gate or assignment of a run that ended so becomes."""
    return "cancelled" if ending == "cancelled" else "closed"


async def close_owned(
    target: AsyncConnection | AsyncSession, endings: Sequence[Ending], now: datetime
) -> None:
    """Close what the ended runs own and queue their ``ended`` job; inside the caller's
    transaction, after the runs' final status is set (so the chat side sees it)."""
    if not endings:
        return
    conn = target if isinstance(target, AsyncConnection) else await target.connection()
    # Runs a Workflow Builder step started: their ending is recorded for Slack (one UPDATE).
    steps = await mark_endings(conn, [(e.run_id, e.status) for e in endings])
    ended_jobs = []
    for ending in endings:
        closed: dict[str, list[str]] = {"gates": [], "assignments": []}
        if ending.status != "failed":  # a failed run may be retried: its gates resume
            closed = await _close_gates_and_assignments(conn, ending, now)
        await conn.execute(
            update(_JOBS)
            .where(_JOBS.c.run_id == ending.run_id, _JOBS.c.status.in_(PENDING_JOBS))
            .values(status="cancelled", finished_at=now, lease_owner=None)
        )
        if ending.status != "succeeded" or any(closed.values()) or ending.run_id in steps:
            # A plain success owns nothing open and its thread has its notes: no chat
            # work, so the hot path (thousands of runs a minute) pays no extra job.
            # A Workflow Builder step's run does: Slack waits for its completion.
            ended_jobs.append(_ended_job(ending, closed, now))
    if ended_jobs:
        await conn.execute(insert(_JOBS), ended_jobs)
    await _signal_parents(conn, endings, now)
    await _cancel_children(conn, [e for e in endings if e.status != "succeeded"], now)


async def _signal_parents(conn: AsyncConnection, endings: Sequence[Ending], now: datetime) -> None:
    """A child run that ended wakes the live parent step waiting for it (``workflow`` step)."""
    parent = _RUNS.alias("parent")
    links = await conn.execute(
        select(_SUB_RUNS.c.child_run_id, _SUB_RUNS.c.parent_run_id, _SUB_RUNS.c.parent_step)
        .join(parent, parent.c.id == _SUB_RUNS.c.parent_run_id)
        .where(_SUB_RUNS.c.child_run_id.in_([e.run_id for e in endings]), parent.c.status.in_(LIVE))
    )
    signals = [
        _job(row.parent_run_id, row.parent_step, "signal", {"child": row.child_run_id}, now)
        for row in links
    ]
    if signals:
        await conn.execute(insert(_JOBS), signals)


async def _cancel_children(conn: AsyncConnection, endings: Sequence[Ending], now: datetime) -> None:
    """A parent that ended other than by succeeding cancels its live children (and theirs)."""
    if not endings:
        return
    by = {e.run_id: e.by for e in endings}
    child = _RUNS.alias("child")
    rows = await conn.execute(
        select(_SUB_RUNS.c.child_run_id, _SUB_RUNS.c.parent_run_id)
        .join(child, child.c.id == _SUB_RUNS.c.child_run_id)
        .where(_SUB_RUNS.c.parent_run_id.in_(list(by)), child.c.status.in_(LIVE))
    )
    children = {row.child_run_id: row.parent_run_id for row in rows}
    if not children:
        return
    await conn.execute(
        update(_RUNS)
        .where(_RUNS.c.id.in_(list(children)), _RUNS.c.status.in_(LIVE))
        .values(status="cancelled", finished_at=now, updated_at=now, version=_RUNS.c.version + 1)
    )
    records = [
        audit_record(
            run_id=child_id,
            step_id=None,
            actor=by[parent_id],
            action="run.cancelled",
            detail={"parent": parent_id},
            now=now,
        )
        for child_id, parent_id in children.items()
    ]
    await conn.execute(insert(_AUDIT), records)
    endings = [Ending(child_id, "cancelled", by[parent]) for child_id, parent in children.items()]
    await close_owned(conn, endings, now)


async def _close_gates_and_assignments(
    conn: AsyncConnection, ending: Ending, now: datetime
) -> dict[str, list[str]]:
    """Close the run's open gates and assignments; their ids (the cards to update)."""
    closed = closed_status(ending.status)
    gates = await conn.execute(
        update(_GATES)
        .where(_GATES.c.run_id == ending.run_id, _GATES.c.status.in_(OPEN_GATE))
        .values(status=closed, decided_by=ending.by[:32], decided_at=now, reason=None)
        .returning(_GATES.c.id)
    )
    gate_ids = [row.id for row in gates]
    assignments = await conn.execute(
        update(_ASSIGNMENTS)
        .where(_ASSIGNMENTS.c.run_id == ending.run_id, _ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENT))
        .values(status=closed, closed_at=now)
        .returning(_ASSIGNMENTS.c.id)
    )
    return {"gates": gate_ids, "assignments": [row.id for row in assignments]}


def _ended_job(ending: Ending, closed: dict[str, list[str]], now: datetime) -> dict[str, Any]:
    payload = {"ending": ending.status, "by": ending.by, "at": now.isoformat()} | closed
    return _job(ending.run_id, ENDED_STEP, ENDED_JOB, payload, now)


def _job(
    run_id: str, step_id: str, kind: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "step_id": step_id,
        "kind": kind,
        "payload": payload,
        "status": "queued",
        "due_at": now,
        "attempt": 0,
        "failures": 0,
        "created_at": now,
    }


def ended_text(status: str, by: str | None, at: datetime | None) -> str:
    """ "cancelled by <@U1> at 2026-12-03 17:40 UTC": how a run's end is told to people."""
    who = f" by <@{by}>" if by and by not in ("switchboard", "timeout") else ""
    when = f" at {at:%Y-%m-%d %H:%M} UTC" if at else ""
    return f"{status.replace('_', ' ')}{who}{when}"


async def ended_note(session: AsyncSession, run: RunRow) -> str:
    """The answer to a click on anything of a finished run."""
    by = None
    if run.status == "cancelled":
        by = await session.scalar(
            select(AuditRow.actor)
            .where(AuditRow.run_id == run.id, AuditRow.action == "run.cancelled")
            .order_by(AuditRow.seq.desc())
            .limit(1)
        )
    return f"This request was {ended_text(run.status, by, run.finished_at)}; nothing changed."


def is_live(run: RunRow | None) -> bool:
    return run is not None and run.status in LIVE


async def audit_run_failed(
    store: Store, run: RunRow, step_id: str, message: str, now: datetime
) -> None:
    """``run.failed`` in the audit trail, naming the version the run failed on."""
    version = (run.workflow_version or "")[:SHORT] or None
    async with store.transaction() as session:
        await audit.append(
            session,
            run_id=run.id,
            step_id=step_id,
            actor="switchboard",
            action="run.failed",
            detail={"error": message, "version": version},
            now=now,
        )
