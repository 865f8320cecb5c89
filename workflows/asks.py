"""Questions asked by an ``ask`` step: who may answer, and exactly one answer per question.

A question is an approval gate row (``approval_gates``: its people, its card, its
timeout), so a run's end closes it like any gate (``workflows/lifecycle.py``
``close_owned``) and a click after that is refused with who ended the run. An
answer is decided in ONE short transaction on the ack path, like an approval
click (``workflows/approvals.py``): the gate row is locked, the answer is stored
as the person's decision (``approval_decisions``, decision ``answer``, the typed
values as JSON), the gate flips ``open -> answered`` with a guarded UPDATE and a
``signal`` job wakes the step. The audit trail gets who, when, which fields and a
digest of the values, never the values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.secrets import Scrubber
from workflows import approvals, audit, lifecycle
from workflows.language.steps.ask import AskStep
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import DecisionRow, GateRow, JobRow, RunRow

ANSWER = "answer"
ANSWERED = "answered"
TIMED_OUT = "timed_out"
_scrubber = Scrubber()
"""Credential shapes and every configured secret: an answer is stored scrubbed."""


@dataclass(frozen=True)
class Answered:
    status: Literal["answered", "denied", "closed"]
    message: str


def ask_step(
    gate: GateRow, workflows: Mapping[str, Workflow], run: RunRow | None
) -> AskStep | None:
    workflow = workflows.get(run.workflow) if run is not None else None
    step = next((s for s in workflow.steps if s.id == gate.step_id), None) if workflow else None
    return step if isinstance(step, AskStep) else None


def refusal(gate: GateRow, step: AskStep | None, user_id: str) -> str | None:
    """Why ``user_id`` may not answer this question now, or None."""
    if step is None:
        return "This question no longer exists."
    if gate.status != "open":
        if gate.decided_by == "timeout" or not gate.decided_by:
            return f"This question is closed ({gate.status})."
        when = f"{gate.decided_at:%Y-%m-%d %H:%M} UTC" if gate.decided_at else "earlier"
        return f"Already answered by <@{gate.decided_by}> at {when}."
    if user_id not in gate.approvers:
        return "You can't answer this question: you are not one of the people asked."
    if step.ask.not_requester and user_id == gate.requester:
        return "You can't answer your own request's question."
    return None


async def may_answer(
    store: Store, workflows: Mapping[str, Workflow], gate_id: str, user_id: str
) -> tuple[AskStep | None, str | None]:
    """The question's step and why the person may not answer (None: they may): before a form."""
    async with store.read() as session:
        gate = await session.get(GateRow, gate_id)
        run = await session.get(RunRow, gate.run_id) if gate is not None else None
        if gate is None:
            return None, "This question no longer exists."
        if run is not None and not lifecycle.is_live(run):
            return None, await lifecycle.ended_note(session, run)
        step = ask_step(gate, workflows, run)
        return step, refusal(gate, step, user_id)


async def answer(
    store: Store,
    workflows: Mapping[str, Workflow],
    *,
    gate_id: str,
    user_id: str,
    values: Mapping[str, Any],
    now: datetime,
) -> Answered:
    """Record ``user_id``'s answer and settle the question, or say why not."""
    values = _scrubber.value(dict(values))
    async with store.transaction(urgent=True) as session:
        gate = await session.get(GateRow, gate_id, with_for_update=True)
        if gate is None:
            return Answered("denied", "This question no longer exists.")
        run = await session.get(RunRow, gate.run_id)
        if run is not None and not lifecycle.is_live(run):
            return Answered("closed", await lifecycle.ended_note(session, run))
        refused = refusal(gate, ask_step(gate, workflows, run), user_id)
        if refused is not None:
            return Answered("closed" if gate.status != "open" else "denied", refused)
        answer = json.dumps(dict(values), default=str)
        if not await approvals.record_decision(session, gate.id, user_id, ANSWER, answer, now):
            return Answered("closed", "You have already answered this question.")
        settled = await _settle(session, gate, ANSWERED, user_id, now)
        if not settled:
            return Answered("closed", "This question was settled a moment ago.")
        session.add(JobRow.queued(gate.run_id, gate.step_id, "signal", now, now, {"gate": gate.id}))
        await audit.append(
            session,
            run_id=gate.run_id,
            step_id=gate.step_id,
            actor=user_id,
            action="ask.answered",
            detail={
                "gate": gate.id,
                "fields": sorted(values),
                "answer_digest": audit.digest(dict(values)),
            },
            now=now,
        )
        return Answered("answered", "Thanks, your answer is recorded.")


async def time_out(store: Store, gate_id: str, now: datetime) -> bool:
    """Close an unanswered question whose time ran out; False if someone answered first."""
    async with store.transaction() as session:
        gate = await session.get(GateRow, gate_id, with_for_update=True)
        if gate is None or gate.status != "open":
            return False
        return await _settle(session, gate, TIMED_OUT, "timeout", now)


async def the_answer(store: Store, gate: GateRow) -> dict[str, Any]:
    """The recorded answer's values (``{}`` if none, or if retention replaced them)."""
    async with store.read() as session:
        text = await session.scalar(
            select(DecisionRow.reason).where(
                DecisionRow.gate_id == gate.id, DecisionRow.decision == ANSWER
            )
        )
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


async def _settle(
    session: AsyncSession, gate: GateRow, status: str, by: str, now: datetime
) -> bool:
    result = await session.execute(
        update(GateRow)
        .where(GateRow.id == gate.id, GateRow.status == "open")
        .values(status=status, decided_by=by, decided_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    gate.status, gate.decided_by, gate.decided_at = status, by, now
    return True
