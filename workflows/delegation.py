"""Delegation: an eligible decider hands her place on an open gate to another one.

The rule (security finding 3: a requester delegated her own four-eyes gate to a
colleague of her choice, who approved it):

- only an *eligible decider* may delegate: an approver of the gate who has not
  decided yet, and never the requester while four-eyes (``not_requester``) holds;
- the delegate must be an eligible decider too: not the delegator, not a bot,
  not the requester, not someone who has already decided;
- the gate must stay satisfiable: approvals so far plus the eligible people
  still to decide must reach ``min_approvals`` (distinct people).

Delegation therefore only ever removes the delegator from ``approvers``; it never
adds anyone, so a chain (A to B, B back to A) ends at A, who has no place left.
Only escalation adds approvers. Every delegation is audited (who, to whom, a
digest of why); every refusal is audited through ``workflows.refusals``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit, refusals
from workflows.approval_policy import APPROVE, eligible_deciders, policy
from workflows.approvals import Decided
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import DecisionRow, GateRow, JobRow, RunRow


async def may_delegate(
    store: Store, workflows: Mapping[str, Workflow], *, gate_id: str, user_id: str, now: datetime
) -> Decided | None:
    """None if ``user_id`` may delegate her place on the gate; else the refusal (audited)."""
    return await delegate(
        store, workflows, gate_id=gate_id, from_user=user_id, to_user=None, reason=None, now=now
    )


async def delegate(
    store: Store,
    workflows: Mapping[str, Workflow],
    *,
    gate_id: str,
    from_user: str,
    to_user: str | None,
    reason: str | None,
    now: datetime,
    not_people: Collection[str] = (),
) -> Decided | None:
    """Hand ``from_user``'s place to ``to_user`` (None: only check ``from_user`` may)."""
    async with store.transaction(urgent=True) as session:
        gate = await session.get(GateRow, gate_id, with_for_update=True)
        if gate is None or gate.status != "open":
            return Decided("closed", "This request has already been decided.", gate)
        run = await session.get(RunRow, gate.run_id)
        _, four_eyes = policy(gate, workflows.get(run.workflow) if run is not None else None)
        decided = await _decisions(session, gate.id)
        why = _delegator_refusal(gate, four_eyes, decided, from_user)
        if why is None and to_user is not None:
            why = _delegate_refusal(gate, four_eyes, decided, from_user, to_user, not_people)
        if why is not None:
            detail = {"decision": "delegate", "to": to_user}
            counts = store.shared("approval_refusals", refusals.RefusalCounts)
            await refusals.audit_refusal(session, counts, gate, from_user, why, detail, now)
            return Decided("denied", why, gate)
        if to_user is None:
            return None
        gate.approvers = sorted(set(gate.approvers) - {from_user})
        payload = {
            "gate": gate.id,
            "event": "delegated",
            "from": from_user,
            "to": to_user,
            "reason": reason,
        }
        session.add(JobRow.queued(gate.run_id, gate.step_id, "signal", now, now, payload))
        await audit.append(
            session,
            run_id=gate.run_id,
            step_id=gate.step_id,
            actor=from_user,
            action="approval.delegated",
            detail={
                "gate": gate.id,
                "from": from_user,
                "to": to_user,
                "reason_digest": audit.digest(reason) if reason else None,
            },
            now=now,
        )
        return Decided("recorded", f"Delegated to <@{to_user}>.", gate)


def _delegator_refusal(
    gate: GateRow, four_eyes: bool, decided: Mapping[str, str], user: str
) -> str | None:
    if user not in gate.approvers:
        return "Only an approver of this request can delegate it."
    if four_eyes and user == gate.requester:
        return (
            "You can't delegate your own request: someone other than you must decide "
            "on it (four-eyes rule)."
        )
    if user in decided:
        return "You have already decided on this request; your decision stands."
    return None


def _delegate_refusal(
    gate: GateRow,
    four_eyes: bool,
    decided: Mapping[str, str],
    from_user: str,
    to_user: str,
    not_people: Collection[str],
) -> str | None:
    eligible = eligible_deciders(gate, four_eyes)
    if to_user == from_user:
        return "You can't delegate to yourself."
    if to_user in not_people:
        return "That account is not a person; choose another approver."
    if to_user == gate.requester:
        return "You can't delegate a request to its requester."
    if to_user not in eligible:
        return "That person is not an approver of this request; choose another approver."
    if to_user in decided:
        return "That person has already decided on this request."
    approvals = sum(1 for decision in decided.values() if decision == APPROVE)
    still_open = [u for u in eligible if u not in decided and u != from_user]
    if approvals + len(still_open) < gate.min_approvals:
        return f"Delegating would leave too few approvers to reach {gate.min_approvals} approvals."
    return None


async def _decisions(session: AsyncSession, gate_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(DecisionRow.user_id, DecisionRow.decision).where(DecisionRow.gate_id == gate_id)
    )
    return {user: decision for user, decision in rows.tuples()}
