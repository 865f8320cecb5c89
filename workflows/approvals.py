"""Approval gates: who may decide, quorum, four-eyes, and exactly one outcome per gate.

A click is decided in ONE short transaction on Slack's ack path: the gate row
is locked (PostgreSQL ``FOR UPDATE``; SQLite has one writer), the person's
decision is inserted (a unique key makes a double click one decision), and if
that decision settles the gate its status flips ``open -> outcome`` with a
guarded UPDATE and a ``signal`` job is queued for the approve step, which
then updates the card and moves the run on. Whoever loses a race (a second
approver, a timeout) finds the gate closed and is told who decided and when.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit, lifecycle, refusals
from workflows.approval_policy import APPROVE, REJECT, needs_fields, needs_reason, policy
from workflows.ids import new_id
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import DecisionRow, GateRow, JobRow, RunRow

OUTCOME_OF = {APPROVE: "approved", REJECT: "rejected"}


@dataclass(frozen=True)
class Decided:
    status: Literal["recorded", "resolved", "denied", "closed", "duplicate"]
    message: str
    gate: GateRow | None = None


async def open_gate(
    store: Store,
    *,
    run_id: str,
    step_id: str,
    approvers: list[str],
    min_approvals: int,
    requester: str | None,
    timeout_at: datetime | None,
    now: datetime,
) -> GateRow:
    """The gate of this (run, step), created on first call; a re-executed step gets the same."""
    async with store.transaction() as session:
        existing = await _gate_of(session, run_id, step_id)
        if existing is not None:
            return existing
        gate = GateRow(
            id=new_id(),
            run_id=run_id,
            step_id=step_id,
            status="open",
            approvers=approvers,
            min_approvals=min_approvals,
            escalation_level=0,
            requester=requester,
            created_at=now,
            timeout_at=timeout_at,
        )
        session.add(gate)
        await audit.append(
            session,
            run_id=run_id,
            step_id=step_id,
            actor="switchboard",
            action="approval.opened",
            detail={"gate": gate.id, "approvers": approvers, "min_approvals": min_approvals},
            now=now,
        )
    return gate


async def set_card(store: Store, gate_id: str, channel: str, ts: str) -> None:
    async with store.transaction() as session:
        await session.execute(
            update(GateRow).where(GateRow.id == gate_id).values(channel_id=channel, message_ts=ts)
        )


async def load_gate(store: Store, gate_id: str) -> GateRow | None:
    async with store.read() as session:
        return await session.get(GateRow, gate_id)


async def record_decision(
    session: AsyncSession,
    gate_id: str,
    user_id: str,
    decision: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Record one person's decision on a gate; False if theirs is there already (one
    decision per person and gate is a unique key, so two racing clicks make one)."""
    try:
        async with session.begin_nested():
            session.add(
                DecisionRow(
                    gate_id=gate_id,
                    user_id=user_id,
                    decision=decision,
                    reason=reason,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


async def decisions(store: Store, gate_id: str) -> list[DecisionRow]:
    async with store.read() as session:
        rows = await session.scalars(
            select(DecisionRow).where(DecisionRow.gate_id == gate_id).order_by(DecisionRow.id)
        )
        return list(rows.all())


async def decide(
    store: Store,
    workflows: Mapping[str, Workflow],
    *,
    gate_id: str,
    user_id: str,
    decision: str,
    reason: str | None,
    now: datetime,
    answer: Mapping[str, object] | None = None,
) -> Decided:
    """Record one person's click; settle the gate if it is now decided.

    ``answer``: the values of the step's ``approve_fields`` (an approval that asks for
    them is refused without them); kept as the decision's JSON ``reason``."""
    async with store.transaction(urgent=True) as session:
        # Most clicks in a burst are refused (a settled gate, someone who may not decide):
        # answer those without queueing on the gate's row lock; only a click that may
        # decide takes it, and is checked again under it. Refusing on the unlocked read
        # is sound: delegation only removes approvers, and a click refused just before an
        # escalation is simply ordered before it.
        gate = await session.get(GateRow, gate_id)
        if gate is None:
            return Decided("denied", "This approval no longer exists.")
        run = await session.get(RunRow, gate.run_id)
        workflow = workflows.get(run.workflow) if run is not None else None
        refusal = await _run_ended(session, run) or _refusal(gate, workflow, user_id, decision)
        if (
            refusal is None
            and decision == APPROVE
            and answer is None
            and needs_fields(gate, workflow)
        ):
            refusal = "denied", "Approving this request needs its form: click Approve on the card."
        unexplained = not (reason or "").strip()
        if refusal is None and unexplained and needs_reason(gate, workflow, decision):
            refusal = "denied", "This choice needs a reason: click its button on the card."
        if refusal is None:
            # Under the gate's lock, the lock a run's end takes to close it: a cancel that
            # committed first is seen here (by the gate or the run), one after it finds
            # the gate decided and drops the signal job this queues.
            await session.refresh(gate, with_for_update=True)
            if run is not None:
                await session.refresh(run)
            refusal = await _run_ended(session, run) or _refusal(gate, workflow, user_id, decision)
        if refusal is not None:
            status, message = refusal
            what = {"decision": decision[:64]}
            counts = store.shared("approval_refusals", refusals.RefusalCounts)
            await refusals.audit_refusal(session, counts, gate, user_id, message, what, now)
            return Decided(status, message, gate)
        recorded = reason if answer is None else json.dumps(dict(answer), default=str)
        if not await record_decision(session, gate.id, user_id, decision, recorded, now):
            return Decided("duplicate", "You have already decided on this request.", gate)
        await audit.append(
            session,
            run_id=gate.run_id,
            step_id=gate.step_id,
            actor=user_id,
            action="approval.decision",
            detail={
                "gate": gate.id,
                "decision": decision,
                "reason_digest": audit.digest(reason) if reason else None,
            },
            now=now,
        )
        outcome = await _settled(session, gate, decision)
        if outcome is None:
            count = await approvals_count(session, gate.id)
            return Decided(
                "recorded", f"Approval recorded ({count} of {gate.min_approvals}).", gate
            )
        await _resolve(session, gate, outcome, user_id, reason, now)
        return Decided("resolved", f"Recorded: {outcome}.", gate)


async def resolve_on_timeout(
    store: Store, gate_id: str, outcome: str, level: int, now: datetime, reason: str | None = None
) -> bool:
    """Settle a gate whose time ran out; False if people (or a later level) got there first."""
    async with store.transaction() as session:
        gate = await session.get(GateRow, gate_id, with_for_update=True)
        if gate is None or gate.status != "open" or gate.escalation_level != level:
            return False
        await _resolve(session, gate, outcome, "timeout", reason, now, signal=False)
        return True


async def escalate(
    store: Store,
    gate_id: str,
    approvers: list[str],
    level: int,
    timeout_at: datetime | None,
    now: datetime,
) -> bool:
    async with store.transaction() as session:
        gate = await session.get(GateRow, gate_id, with_for_update=True)
        if gate is None or gate.status != "open" or gate.escalation_level != level:
            return False
        gate.approvers = sorted(set(gate.approvers) | set(approvers))
        gate.escalation_level = level + 1
        gate.timeout_at = timeout_at
        await audit.append(
            session,
            run_id=gate.run_id,
            step_id=gate.step_id,
            actor="switchboard",
            action="approval.escalated",
            detail={"gate": gate.id, "level": level + 1, "added": approvers},
            now=now,
        )
        return True


async def _run_ended(
    session: AsyncSession, run: RunRow | None
) -> tuple[Literal["closed"], str] | None:
    """A click on a gate of a finished run: refused, with who ended it and when."""
    if run is None or lifecycle.is_live(run):
        return None
    return "closed", await lifecycle.ended_note(session, run)


async def finished_note(store: Store, gate_id: str) -> str | None:
    """Why nothing can be done on this gate because its run ended, or None (modals ask)."""
    async with store.read() as session:
        gate = await session.get(GateRow, gate_id)
        run = await session.get(RunRow, gate.run_id) if gate is not None else None
        if run is None or lifecycle.is_live(run):
            return None
        return await lifecycle.ended_note(session, run)


def _refusal(
    gate: GateRow, workflow: Workflow | None, user_id: str, decision: str
) -> tuple[Literal["denied", "closed"], str] | None:
    if gate.status != "open":
        who = (
            f"<@{gate.decided_by}>"
            if gate.decided_by and gate.decided_by != "timeout"
            else "timeout"
        )
        when = f"{gate.decided_at:%Y-%m-%d %H:%M} UTC" if gate.decided_at else "earlier"
        return "closed", f"Already {gate.status} by {who} at {when}."
    allowed_outcomes, four_eyes = policy(gate, workflow)
    if decision not in allowed_outcomes:
        # Constant text: the refusal's audit bound is per reason (workflows.refusals).
        return "denied", "That is not an option on this approval."
    if user_id not in gate.approvers:
        return "denied", "You can't decide on this request: you are not one of its approvers."
    if four_eyes and user_id == gate.requester:
        return "denied", "You can't approve your own request (four-eyes rule)."
    return None


async def given_answer(store: Store, gate_id: str, user_id: str | None) -> dict[str, object]:
    """The fields ``user_id`` gave with their approval (``{}`` if none)."""
    async with store.read() as session:
        text = await session.scalar(
            select(DecisionRow.reason).where(
                DecisionRow.gate_id == gate_id,
                DecisionRow.user_id == (user_id or ""),
                DecisionRow.decision == APPROVE,
            )
        )
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


async def approvals_count(session: AsyncSession, gate_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(DecisionRow)
        .where(DecisionRow.gate_id == gate_id, DecisionRow.decision == APPROVE)
    )
    return int(count or 0)


async def _settled(session: AsyncSession, gate: GateRow, decision: str) -> str | None:
    if decision != APPROVE:
        return OUTCOME_OF.get(decision, decision)  # any reject (or custom outcome) decides
    if await approvals_count(session, gate.id) >= gate.min_approvals:
        return "approved"
    return None


async def _resolve(
    session: AsyncSession,
    gate: GateRow,
    outcome: str,
    by: str,
    reason: str | None,
    now: datetime,
    *,
    signal: bool = True,
) -> None:
    await session.execute(
        update(GateRow)
        .where(GateRow.id == gate.id, GateRow.status == "open")
        .values(status=outcome, decided_by=by, decided_at=now, reason=reason)
    )
    gate.status, gate.decided_by, gate.decided_at, gate.reason = outcome, by, now, reason
    if signal:
        session.add(JobRow.queued(gate.run_id, gate.step_id, "signal", now, now, {"gate": gate.id}))
    await audit.append(
        session,
        run_id=gate.run_id,
        step_id=gate.step_id,
        actor=by,
        action="approval.resolved",
        detail={"gate": gate.id, "outcome": outcome},
        now=now,
    )


async def _gate_of(session: AsyncSession, run_id: str, step_id: str) -> GateRow | None:
    gate: GateRow | None = await session.scalar(
        select(GateRow).where(GateRow.run_id == run_id, GateRow.step_id == step_id)
    )
    return gate
