"""What an approval's step asks of whoever decides: its options, four-eyes, fields, reasons.

Read from the run's workflow definition for a gate; ``workflows.approvals`` applies
it inside the decision's transaction, and the Slack edge asks it before opening a
form or a reason modal.
"""

from __future__ import annotations

from collections.abc import Mapping

from workflows.language.inputs import InputField
from workflows.language.steps.approve import ApproveStep
from workflows.language.steps.ask import AskStep
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import GateRow, RunRow

APPROVE, REJECT = "approve", "reject"


def needs_fields(gate: GateRow, workflow: Workflow | None) -> list[InputField]:
    """The fields Approve asks for on this gate's step (none: a plain click approves)."""
    step = next((s for s in workflow.steps if s.id == gate.step_id), None) if workflow else None
    return list(step.approve.approve_fields) if isinstance(step, ApproveStep) else []


def needs_reason(gate: GateRow, workflow: Workflow | None, decision: str) -> bool:
    """Whether choosing the custom outcome ``decision`` must come with a reason.

    (Reject asks for one in Slack's modal; ``switchboard test --reject`` and timeouts
    decide without one, so it is not enforced here.)"""
    step = next((s for s in workflow.steps if s.id == gate.step_id), None) if workflow else None
    if not isinstance(step, ApproveStep):
        return False
    return any(o.id == decision and o.reason for o in step.approve.outcomes)


async def reason_needed(
    store: Store, workflows: Mapping[str, Workflow], gate_id: str, decision: str
) -> str | None:
    """The button's words if choosing this custom outcome opens the reason modal, else None."""
    async with store.read() as session:
        gate = await session.get(GateRow, gate_id)
        run = await session.get(RunRow, gate.run_id) if gate is not None else None
    workflow = workflows.get(run.workflow) if run is not None else None
    if gate is None or workflow is None or not needs_reason(gate, workflow, decision):
        return None
    step = next(s for s in workflow.steps if s.id == gate.step_id)
    assert isinstance(step, ApproveStep)  # needs_reason holds only for approve steps
    return next(o.label for o in step.approve.outcomes if o.id == decision)


async def approve_fields_of(
    store: Store, workflows: Mapping[str, Workflow], gate_id: str
) -> list[InputField]:
    """The fields Approve asks for on this gate (read on a snapshot, before a form opens)."""
    async with store.read() as session:
        gate = await session.get(GateRow, gate_id)
        run = await session.get(RunRow, gate.run_id) if gate is not None else None
    if gate is None or run is None:
        return []
    return needs_fields(gate, workflows.get(run.workflow))


def eligible_deciders(gate: GateRow, four_eyes: bool) -> list[str]:
    """Who may decide on this gate now: its approvers, less the requester under four-eyes."""
    return [user for user in gate.approvers if not (four_eyes and user == gate.requester)]


def policy(gate: GateRow, workflow: Workflow | None) -> tuple[set[str], bool]:
    """The outcomes a click may choose and whether four-eyes holds (default: it does)."""
    step = next((s for s in workflow.steps if s.id == gate.step_id), None) if workflow else None
    if isinstance(step, AskStep):  # a question is answered (workflows/asks.py), not decided
        return set(), False
    if not isinstance(step, ApproveStep):
        return {APPROVE, REJECT}, True
    return {APPROVE, REJECT} | {o.id for o in step.approve.outcomes}, step.approve.not_requester
