"""One run as the console shows it: steps, approvals, assignments, audit, version.

Everything is read in one ``Store.read()`` snapshot, by the run's id (each table has an
index on ``run_id``). Outputs are passed through the same scrubber as threads
(``connectors/secrets.py``) and cut to a readable size; the audit trail is the records'
actions, actors and digests, with each sealed record's hash recomputed and its link to
the record before it checked (``chain``: ``ok`` | ``unsealed`` | ``broken``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.secrets import Scrubber
from workflows import audit
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import (
    AssignmentRow,
    AuditRow,
    DecisionRow,
    GateRow,
    JobRow,
    RequestRow,
    RunRow,
)

OUTPUT_CHARS = 4000
MAX_JOBS = 500
MAX_AUDIT = 500
_scrubber = Scrubber()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds() * 1000))


def _shown(value: Any) -> str:
    text = json.dumps(_scrubber.value(value), default=str, indent=1, ensure_ascii=False)
    return text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + " …(cut)"


def run_summary(run: RunRow, request: RequestRow | None) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow": run.workflow,
        "status": run.status,
        "requester": run.requester,
        "current_step": run.current_step,
        "error": _scrubber.text(run.error) if run.error else None,
        "version": run.workflow_version,
        "channel": run.channel_id,
        "root_ts": run.root_ts,
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "finished_at": _iso(run.finished_at),
        "purged": run.purged_at is not None,
        "trigger": request.source if request else None,
        "text": request.text if request else "",
    }


def job_view(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "step": job.step_id,
        "job_kind": job.kind,
        "timer": job.payload.get("timer") if isinstance(job.payload, dict) else None,
        "status": job.status,
        "attempt": job.attempt,
        "failures": job.failures,
        "due_at": _iso(job.due_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "queue_delay_ms": _ms(job.due_at, job.started_at),
        "duration_ms": _ms(job.started_at, job.finished_at),
        "error": _scrubber.text(job.error) if job.error else None,
    }


def step_plan(
    workflow: Workflow | None, run: RunRow, jobs: Sequence[JobRow]
) -> list[dict[str, Any]]:
    """The definition's steps in order, each with its kind, retry policy, output and jobs."""
    outputs = run.context.get("steps", {}) if isinstance(run.context, dict) else {}
    by_step: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by_step.setdefault(job.step_id, []).append(job_view(job))
    steps = list(workflow.steps) if workflow is not None else []
    plan: list[dict[str, Any]] = []
    for step in steps:
        runs_of = by_step.pop(step.id, [])
        plan.append(
            {
                "id": step.id,
                "kind": step.KIND,
                "retry": step.retry.model_dump(),
                "timeout_s": step.timeout,
                "jobs": runs_of,
                "status": _step_status(run, step.id, runs_of),
                "next_due": next((j["due_at"] for j in runs_of if j["status"] == "queued"), None),
                "output": _shown(outputs[step.id]) if step.id in outputs else None,
            }
        )
    for step_id, others in by_step.items():  # the run's own jobs (`_run`), retired gates
        kind = others[-1]["job_kind"]
        plan.append({"id": step_id, "kind": kind, "jobs": others, "status": others[-1]["status"]})
    return plan


def _step_status(run: RunRow, step_id: str, jobs: list[dict[str, Any]]) -> str:
    if run.status == "waiting" and run.current_step == step_id:
        return "waiting"
    return str(jobs[-1]["status"]) if jobs else "not reached"


async def _of_run(session: AsyncSession, table: Any, run_id: str, order: Any, limit: int) -> Any:
    statement = select(table).where(table.run_id == run_id).order_by(order).limit(limit)
    return (await session.scalars(statement)).all()


async def read_run(store: Store, run_id: str) -> dict[str, Any] | None:
    async with store.read() as session:
        run = await session.get(RunRow, run_id)
        if run is None:
            return None
        request = await session.get(RequestRow, run.request_id) if run.request_id else None
        jobs = await _of_run(session, JobRow, run_id, JobRow.id, MAX_JOBS)
        gates = await _of_run(session, GateRow, run_id, GateRow.created_at, 100)
        decisions = (
            await session.scalars(
                select(DecisionRow)
                .where(DecisionRow.gate_id.in_([g.id for g in gates]))
                .order_by(DecisionRow.id)
            )
        ).all()
        assignments = await _of_run(session, AssignmentRow, run_id, AssignmentRow.created_at, 100)
        records = await _of_run(session, AuditRow, run_id, AuditRow.seq, MAX_AUDIT)
        links = await _predecessors(session, records)
    return {
        "run": run,
        "request": request,
        "jobs": jobs,
        "gates": [_gate_view(g, [d for d in decisions if d.gate_id == g.id]) for g in gates],
        "assignments": [_assignment_view(a) for a in assignments],
        "audit": [_audit_view(r, links) for r in records],
    }


def _gate_view(gate: GateRow, decisions: Sequence[DecisionRow]) -> dict[str, Any]:
    return {
        "id": gate.id,
        "step": gate.step_id,
        "status": gate.status,
        "approvers": list(gate.approvers),
        "min_approvals": gate.min_approvals,
        "escalation_level": gate.escalation_level,
        "decided_by": gate.decided_by,
        "decided_at": _iso(gate.decided_at),
        "timeout_at": _iso(gate.timeout_at),
        "decisions": [
            {"user": d.user_id, "decision": d.decision, "at": _iso(d.created_at)} for d in decisions
        ],
    }


def _assignment_view(row: AssignmentRow) -> dict[str, Any]:
    return {
        "step": row.step_id,
        "label": row.label,
        "predicted": row.predicted_label,
        "confidence": row.confidence,
        "owner": f"{row.owner_kind}:{row.owner_id}",
        "status": row.status,
        "claimed_by": row.claimed_by,
        "created_at": _iso(row.created_at),
        "closed_at": _iso(row.closed_at),
    }


async def _predecessors(session: AsyncSession, records: Sequence[AuditRow]) -> dict[int, str]:
    """chain_seq -> hash of the records just before the run's sealed ones."""
    wanted = [r.chain_seq - 1 for r in records if r.chain_seq is not None and r.chain_seq > 1]
    if not wanted:
        return {}
    rows = await session.execute(
        select(AuditRow.chain_seq, AuditRow.hash).where(AuditRow.chain_seq.in_(wanted))
    )
    return {int(seq): str(digest) for seq, digest in rows.all() if seq is not None}


def _chain(row: AuditRow, links: dict[int, str]) -> str:
    if row.chain_seq is None or row.hash is None or row.prev_hash is None:
        return "unsealed"
    expected_prev = audit.GENESIS if row.chain_seq == 1 else links.get(row.chain_seq - 1)
    if expected_prev != row.prev_hash or audit.record_hash(row.prev_hash, row) != row.hash:
        return "broken"
    return "ok"


def _audit_view(row: AuditRow, links: dict[int, str]) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": _iso(row.created_at),
        "step": row.step_id,
        "actor": row.actor,
        "action": row.action,
        "detail": _shown(row.detail),
        "chain": _chain(row, links),
    }
