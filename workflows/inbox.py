"""What one person is waiting on and waited for: the data behind App Home and /flow approvals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from workflows.language.steps.ask import AskStep
from workflows.language.workflow import Workflow
from workflows.lifecycle import LIVE
from workflows.store import Store
from workflows.tables import AuditRow, GateRow, RunRow

OPEN_GATES_SCANNED = 500
"""Approver lists are JSON; we filter the newest open gates of live runs in Python rather
than per dialect. Newest first and live runs only: a gate left open by a run that ended
(before ``workflows/lifecycle.py`` closed them) must never push a new one out of sight."""


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
                .where(GateRow.status == "open", RunRow.status.in_(LIVE))
                .order_by(GateRow.created_at.desc(), GateRow.id.desc())
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


def catalogue(workflows: Mapping[str, Workflow]) -> list[dict[str, str]]:
    return [
        {
            "name": wf.name,
            "title": wf.title,
            "description": wf.description,
            "command": (wf.commands or [wf.name])[0],
            "form": "yes" if wf.inputs else "",
        }
        for wf in sorted(workflows.values(), key=lambda wf: wf.name)
    ]


async def home_data(
    store: Store, user_id: str, workflows: Mapping[str, Workflow]
) -> dict[str, Any]:
    """What ``templates/app_home.json.j2`` shows ``user_id`` (published by the bot and by
    the engine when a run ends)."""
    pending = await pending_approvals(store, user_id)
    return {
        "pending": pending,
        # An ask step's question gets an Answer button, not Approve / Reject.
        "questions": [item.gate_id for item in pending if _is_ask(workflows, item)],
        "requests": await open_requests(store, user_id),
        "workflows": catalogue(workflows),
    }


def _is_ask(workflows: Mapping[str, Workflow], item: PendingApproval) -> bool:
    workflow = workflows.get(item.workflow)
    steps = workflow.steps if workflow else []
    return any(isinstance(s, AskStep) and s.id == item.step_id for s in steps)


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
