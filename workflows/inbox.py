"""What one person is waiting on and waited for: the data behind App Home and /flow approvals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from workflows.store import Store
from workflows.tables import AuditRow, GateRow, RunRow

OPEN_GATES_SCANNED = 500
"""Approver lists are JSON; we filter the newest open gates in Python rather than per dialect."""


@dataclass(frozen=True)
class PendingApproval:
    gate_id: str
    run_id: str
    workflow: str
    step_id: str
    requester: str | None
    waiting_since: datetime
    text: str


@dataclass(frozen=True)
class OpenRequest:
    run_id: str
    workflow: str
    status: str
    current_step: str | None
    started: datetime


@dataclass(frozen=True)
class TrailLine:
    at: str
    action: str
    step: str | None
    actor: str


async def pending_approvals(store: Store, user_id: str, limit: int = 20) -> list[PendingApproval]:
    async with store.read() as session:
        rows = (
            await session.execute(
                select(GateRow, RunRow)
                .join(RunRow, RunRow.id == GateRow.run_id)
                .where(GateRow.status == "open")
                .order_by(GateRow.created_at)
                .limit(OPEN_GATES_SCANNED)
            )
        ).all()
    pending = [
        PendingApproval(
            gate.id,
            run.id,
            run.workflow,
            gate.step_id,
            gate.requester,
            gate.created_at,
            str(run.context.get("input", {}).get("text", "")),
        )
        for gate, run in rows
        if user_id in gate.approvers and user_id != gate.requester
    ]
    return pending[:limit]


async def open_requests(store: Store, user_id: str, limit: int = 10) -> list[OpenRequest]:
    async with store.read() as session:
        runs = (
            await session.scalars(
                select(RunRow)
                .where(
                    RunRow.requester == user_id, RunRow.status.in_(("running", "waiting", "failed"))
                )
                .order_by(RunRow.created_at.desc())
                .limit(limit)
            )
        ).all()
    return [OpenRequest(r.id, r.workflow, r.status, r.current_step, r.created_at) for r in runs]


async def may_see(store: Store, run: RunRow, user_id: str) -> bool:
    """A run's trail is for its requester and the people asked to decide on it."""
    if run.requester == user_id:
        return True
    async with store.read() as session:
        gates = (await session.scalars(select(GateRow).where(GateRow.run_id == run.id))).all()
    return any(user_id in gate.approvers for gate in gates)


async def trail(store: Store, run_id: str, limit: int = 50) -> list[TrailLine]:
    async with store.read() as session:
        rows = (
            await session.scalars(
                select(AuditRow)
                .where(AuditRow.run_id == run_id)
                .order_by(AuditRow.seq)
                .limit(limit)
            )
        ).all()
    return [
        TrailLine(row.created_at.strftime("%m-%d %H:%M:%S"), row.action, row.step_id, row.actor)
        for row in rows
    ]
