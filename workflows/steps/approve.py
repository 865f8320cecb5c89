"""The ``approve`` step: a card with buttons, a durable wait, reminders, timeout and escalation.

The step runs in three situations (``ctx.job_kind``):

- ``step``: open the gate, post the card, queue the reminder and timeout timers,
  and leave the run waiting — rows and due times, nothing in memory;
- ``timer``: a reminder (nudge whoever has not answered) or the timeout: the next
  escalation level (``workflows/escalation.py``), or at the end of the chain
  ``on_timeout`` / the chain's ``then`` (reject, approve, or go to a step);
- ``signal``: the gate was settled by people (``workflows.approvals.decide``):
  update the card in place, thread the outcome, and move the run on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from workflows import approval_policy, approvals, escalation
from workflows.language.steps.approve import ApproveSpec, ApproveStep
from workflows.ports import ChatError, ChatMessage, MessageRef
from workflows.steps.base import StepContext, StepError, StepOutcome, Timer, evaluate
from workflows.steps.people_steps import card_target, post_card, resolve_people, step_gate
from workflows.tables import GateRow


async def run_approve(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, ApproveStep)
    if ctx.job_kind == "signal" and ctx.payload.get("event") == "delegated":
        gate = await _gate(ctx, str(ctx.payload["gate"]))
        await _post_card(ctx, gate, note=None)
        return StepOutcome(
            output={"approvers": gate.approvers},
            waiting=True,
            action="approval.card_updated",
            summary=_delegated_note(ctx.payload),
        )
    if ctx.job_kind == "signal":
        return await _settled(ctx, str(ctx.payload["gate"]))
    if ctx.job_kind == "timer":
        return await _on_timer(ctx)
    return await _open(ctx)


async def _open(ctx: StepContext) -> StepOutcome:
    spec = _spec(ctx)
    now = ctx.clock.now()
    approvers = await resolve_people(ctx, spec.approvers, "approvers")
    if not approvers:
        raise StepError("no approvers: the list resolved to nobody")
    timeout_at = now + timedelta(seconds=spec.timeout) if spec.timeout else None
    gate = await approvals.open_gate(
        ctx.store,
        run_id=ctx.run_id,
        step_id=ctx.step.id,
        approvers=approvers,
        min_approvals=spec.min_approvals,
        requester=ctx.requester,
        timeout_at=timeout_at,
        now=now,
    )
    ref = await _post_card(ctx, gate, note=None)
    lacking = _no_quorum(gate, spec)
    if lacking is not None:
        return _fail_fast(gate, spec, lacking, now, level=0)
    timers = [Timer(timeout_at, "timeout", {"level": 0})] if timeout_at else []
    if spec.remind_every:
        timers.append(Timer(now + timedelta(seconds=spec.remind_every), "remind", {"n": 1}))
    where = _where(ctx, ref.channel)
    who = ", ".join(f"<@{u}>" for u in approvers[:10])
    return StepOutcome(
        output={"gate": gate.id, "status": "waiting", "approvers": approvers},
        summary=f"waiting for approval {where} from {who}",
        waiting=True,
        timers=timers,
        action="approval.requested",
    )


def _where(ctx: StepContext, channel: str) -> str:
    """Where the card went, as people read it: a DM is no channel a ``<#D…>`` link names."""
    if ctx.thread is not None and channel == ctx.thread.channel:
        return "here"
    if channel.startswith("#"):  # a chat that answers with the name (`switchboard test`)
        return f"in {channel}"
    return "by DM" if channel.startswith("D") else f"in <#{channel}>"


async def _on_timer(ctx: StepContext) -> StepOutcome:
    spec = _spec(ctx)
    gate = await _gate(ctx)
    if gate.status != "open":
        return StepOutcome(waiting=True, action="approval.timer_ignored", summary="")
    if ctx.payload.get("timer") == "remind":
        if int(ctx.payload.get("level", 0)) != gate.escalation_level:
            return StepOutcome(waiting=True, action="approval.timer_ignored", summary="")
        return await _remind(ctx, spec, gate)
    level = int(ctx.payload.get("level", 0))
    now = ctx.clock.now()
    up_next = escalation.next_level(escalation.chain_of(spec), level)
    if up_next is not None and level == gate.escalation_level:
        return await _escalate(ctx, spec, up_next, gate)
    lacking = ctx.payload.get("lacking")
    outcome, goto = escalation.final_outcome(spec, lacking=bool(lacking))
    reason = str(lacking) if lacking else None
    if not await approvals.resolve_on_timeout(ctx.store, gate.id, outcome, level, now, reason):
        return StepOutcome(waiting=True, action="approval.timer_ignored")
    result = await _settled(ctx, gate.id)
    if goto is not None:
        result.next_step = goto
    return result


async def _escalate(
    ctx: StepContext, spec: ApproveSpec, level: escalation.Level, gate: GateRow
) -> StepOutcome:
    """Add the next level's people to the gate; its own timeout decides what comes after."""
    now = ctx.clock.now()
    added = await resolve_people(ctx, level.approvers, "approvers")
    timeout_at = now + timedelta(seconds=level.timeout) if level.timeout else None
    if not await approvals.escalate(ctx.store, gate.id, added, level.number - 1, timeout_at, now):
        return StepOutcome(waiting=True, action="approval.timer_ignored")
    gate = await _gate(ctx)
    who = ", ".join(f"<@{u}>" for u in added)
    note = f"Escalated (level {level.number}) to {who} after no decision in time."
    if ctx.payload.get("lacking"):
        note = f"Escalated (level {level.number}) to {who}: {ctx.payload['lacking']}"
    await _post_card(ctx, gate, note=note)
    lacking = _no_quorum(gate, spec)
    if lacking is not None:  # escalation added nobody who may decide either
        return _fail_fast(gate, spec, lacking, now, level=level.number)
    timers = [Timer(timeout_at, "timeout", {"level": level.number})] if timeout_at else []
    if level.remind_every:
        due = now + timedelta(seconds=level.remind_every)
        timers.append(Timer(due, "remind", {"n": 1, "level": level.number}))
    return StepOutcome(
        summary=note,
        waiting=True,
        timers=timers,
        output={"approvers": gate.approvers},
        action="approval.escalated",
        audit={"level": level.number, "approvers": gate.approvers},
    )


def _no_quorum(gate: GateRow, spec: ApproveSpec) -> str | None:
    """Why this gate can never reach its quorum (too few eligible deciders), or None."""
    eligible = approval_policy.eligible_deciders(gate, spec.not_requester)
    if len(eligible) >= gate.min_approvals:
        return None
    if not eligible:
        return "no one but the requester can approve this request (four-eyes rule)"
    return (
        f"only {len(eligible)} people besides the requester can approve this request, "
        f"and it needs {gate.min_approvals} approvals"
    )


def _fail_fast(
    gate: GateRow, spec: ApproveSpec, lacking: str, now: datetime, level: int
) -> StepOutcome:
    """Say at once that the gate can't be decided, and act on ``on_timeout`` now."""
    then = escalation.final_words(spec, level)
    return StepOutcome(
        output={"gate": gate.id, "status": "waiting", "approvers": gate.approvers},
        summary=f":warning: {lacking[0].upper()}{lacking[1:]}; {then}.",
        waiting=True,
        timers=[Timer(now, "timeout", {"level": level, "lacking": lacking})],
        action="approval.no_eligible_approver",
        audit={"approvers": gate.approvers, "requester": gate.requester, "level": level},
    )


def _delegated_note(payload: Mapping[str, Any]) -> str:
    note = f"<@{payload.get('from')}> delegated to <@{payload.get('to')}>"
    return note + (f": {payload['reason']}" if payload.get("reason") else "")


async def _remind(ctx: StepContext, spec: ApproveSpec, gate: GateRow) -> StepOutcome:
    n, level = int(ctx.payload.get("n", 1)), gate.escalation_level
    # Level 0 keeps its old keys; each later level numbers its own reminders.
    key = f"remind-{n}" if level == 0 else f"remind-l{level}-{n}"
    key += "-now" if ctx.payload.get("once") else ""  # asked for now: its own series of keys
    decided = {d.user_id for d in await approvals.decisions(ctx.store, gate.id)}
    waiting_on = [u for u in gate.approvers if u not in decided and u != gate.requester]
    data = {
        "gate": _gate_view(gate),
        "title": spec.title,
        "waiting_on": waiting_on,
        "n": n,
        "level": level,
        "card": {"channel": gate.channel_id, "ts": gate.message_ts},
    }
    if ctx.thread is not None:
        await ctx.send(
            ctx.thread.channel, ChatMessage("approval_reminder", data), ctx.thread.ts, key
        )
    for user in waiting_on[:20]:
        try:
            await ctx.send(
                f"@{user}", ChatMessage("approval_reminder", data), None, f"{key}-{user}"
            )
        except ChatError as exc:
            if exc.retryable:
                raise
    timers = []
    every = escalation.remind_interval(spec, level)
    next_due = ctx.clock.now() + timedelta(seconds=every or 0)
    # A reminder asked for now (the console's "remind now", ``once``) starts no second series.
    series = not ctx.payload.get("once")
    if every and series and (gate.timeout_at is None or next_due < gate.timeout_at):
        timers.append(Timer(next_due, "remind", {"n": n + 1, "level": level}))
    # The reminder itself is the thread message; no separate step note.
    return StepOutcome(
        waiting=True, timers=timers, action="approval.reminded", audit={"reminded": len(waiting_on)}
    )


async def _settled(ctx: StepContext, gate_id: str) -> StepOutcome:
    spec = _spec(ctx)
    gate = await _gate(ctx, gate_id)
    await _post_card(ctx, gate, note=None)
    decisions = await approvals.decisions(ctx.store, gate.id)
    outcome = gate.status
    default_next = ctx.workflow.next_step_id(ctx.step.id) if outcome == "approved" else None
    by = "timeout" if gate.decided_by == "timeout" else f"<@{gate.decided_by}>"
    return StepOutcome(
        output={
            "outcome": outcome,
            "decided_by": gate.decided_by,
            "decided_at": gate.decided_at.isoformat() if gate.decided_at else None,
            "reason": gate.reason,
            "approvals": [d.user_id for d in decisions if d.decision == approval_policy.APPROVE],
            "answer": await _answer(ctx, spec, gate),
        },
        summary=_decided(spec, outcome, by) + (f": {gate.reason}" if gate.reason else ""),
        next_step=spec.next.get(outcome, default_next),
        action="approval.completed",
    )


def _decided(spec: ApproveSpec, outcome: str, by: str) -> str:
    """The outcome in the workflow's words, as the card says it: "Changes requested by @erin"."""
    if by == "timeout":
        return "timed out" if outcome == "timed_out" else f"{outcome} on timeout"
    custom = next((o for o in spec.outcomes if o.id == outcome), None)
    if custom is None:
        return f"{outcome.replace('_', ' ')} by {by}"
    return f"{custom.done} by {by}" if custom.done else f"{custom.label}, chosen by {by}"


async def _answer(ctx: StepContext, spec: ApproveSpec, gate: GateRow) -> dict[str, Any] | None:
    """The approve_fields given by whoever settled the gate approved (None: not asked)."""
    if not spec.approve_fields or gate.status != "approved":
        return None
    return await approvals.given_answer(ctx.store, gate.id, gate.decided_by)


async def _post_card(ctx: StepContext, gate: GateRow, note: str | None) -> MessageRef:
    spec = _spec(ctx)
    data: dict[str, Any] = {
        "gate": _gate_view(gate),
        "title": evaluate(ctx, spec.title),
        "summary": evaluate(ctx, spec.summary),
        "fields": evaluate(ctx, spec.fields),
        "outcomes": [o.model_dump() for o in spec.outcomes],
        "note": note,
        "run": {"id": ctx.run_id, "workflow": ctx.workflow.name, "requester": ctx.requester},
    }
    target = card_target(ctx, spec.user, spec.channel, "approve")
    return await post_card(ctx, gate, target, ChatMessage(spec.template, data))


def _gate_view(gate: GateRow) -> dict[str, Any]:
    return {
        "id": gate.id,
        "status": gate.status,
        "approvers": gate.approvers,
        "min_approvals": gate.min_approvals,
        "decided_by": gate.decided_by,
        "decided_at": gate.decided_at.strftime("%Y-%m-%d %H:%M UTC") if gate.decided_at else None,
        "reason": gate.reason,
        "level": gate.escalation_level,
    }


def _spec(ctx: StepContext) -> ApproveSpec:
    assert isinstance(ctx.step, ApproveStep)
    return ctx.step.approve


async def _gate(ctx: StepContext, gate_id: str | None = None) -> GateRow:
    return await step_gate(ctx, gate_id, "the approval gate of this step is missing")
