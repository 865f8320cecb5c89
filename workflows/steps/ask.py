"""The ``ask`` step: a question with an "Answer" button, a durable wait, reminders, a timeout.

The step runs in three situations (``ctx.job_kind``), as ``approve`` does:

- ``step``: open the question (a gate row, ``workflows/asks.py``), post its card,
  queue the reminder and timeout timers and leave the run waiting;
- ``timer``: a reminder (the thread and a DM to each person asked) or the timeout,
  which closes the question and applies ``on_timeout``;
- ``signal``: someone answered (``workflows.asks.answer``): the card is updated in
  place and the answer, who gave it and when become the step's output.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from workflows import approvals, asks
from workflows.language.steps.ask import AskSpec, AskStep, GotoOnTimeout
from workflows.ports import ChatError, ChatMessage, MessageRef
from workflows.steps.base import StepContext, StepError, StepOutcome, Timer, evaluate
from workflows.steps.people_steps import card_target, post_card, resolve_people, step_gate
from workflows.tables import GateRow

CARD = "ask_card"
REMINDERS_TO = 20


async def run_ask(ctx: StepContext) -> StepOutcome:
    if ctx.job_kind == "signal":
        return await _settled(ctx, await _gate(ctx, str(ctx.payload.get("gate", ""))))
    if ctx.job_kind == "timer":
        return await _on_timer(ctx)
    return await _open(ctx)


async def _open(ctx: StepContext) -> StepOutcome:
    spec, now = _spec(ctx), ctx.clock.now()
    people = await resolve_people(ctx, spec.people, "people")
    if spec.not_requester:
        people = [p for p in people if p != ctx.requester]
    if not people:
        raise StepError("nobody to ask: the list resolved to nobody")
    timeout_at = now + timedelta(seconds=spec.timeout) if spec.timeout else None
    gate = await approvals.open_gate(
        ctx.store,
        run_id=ctx.run_id,
        step_id=ctx.step.id,
        approvers=people,
        min_approvals=1,
        requester=ctx.requester,
        timeout_at=timeout_at,
        now=now,
    )
    ref = await _post_card(ctx, gate, {})
    timers = [Timer(timeout_at, "timeout")] if timeout_at else []
    if spec.remind_every:
        timers.append(Timer(now + timedelta(seconds=spec.remind_every), "remind", {"n": 1}))
    where = (
        "here"
        if ctx.thread is not None and ref.channel == ctx.thread.channel
        else (f"<#{ref.channel}>")
    )
    who = ", ".join(f"<@{u}>" for u in people[:10])
    return StepOutcome(
        output={"gate": gate.id, "status": "waiting", "people": people},
        summary=f"waiting for an answer {where} from {who}",
        waiting=True,
        timers=timers,
        action="ask.asked",
        audit={"gate": gate.id, "people": people, "fields": [f.id for f in spec.fields]},
    )


async def _on_timer(ctx: StepContext) -> StepOutcome:
    spec, gate = _spec(ctx), await _gate(ctx)
    if gate.status != "open":
        return StepOutcome(waiting=True, action="ask.timer_ignored")
    if ctx.payload.get("timer") == "remind":
        return await _remind(ctx, spec, gate)
    if not await asks.time_out(ctx.store, gate.id, ctx.clock.now()):
        return StepOutcome(waiting=True, action="ask.timer_ignored")
    return await _settled(ctx, await _gate(ctx, gate.id))


async def _remind(ctx: StepContext, spec: AskSpec, gate: GateRow) -> StepOutcome:
    n = int(ctx.payload.get("n", 1))
    data = {
        "title": evaluate(ctx, spec.title),
        "people": gate.approvers,
        "n": n,
        "card": {"channel": gate.channel_id, "ts": gate.message_ts},
    }
    if ctx.thread is not None:
        message = ChatMessage("ask_reminder", data)
        await ctx.send(ctx.thread.channel, message, ctx.thread.ts, f"remind-{n}")
    for user in gate.approvers[:REMINDERS_TO]:
        try:
            await ctx.send(
                f"@{user}", ChatMessage("ask_reminder", data), None, f"remind-{n}-{user}"
            )
        except ChatError as exc:
            if exc.retryable:
                raise
    due = ctx.clock.now() + timedelta(seconds=spec.remind_every or 0)
    timers = []
    if spec.remind_every and (gate.timeout_at is None or due < gate.timeout_at):
        timers.append(Timer(due, "remind", {"n": n + 1}))
    return StepOutcome(
        waiting=True, timers=timers, action="ask.reminded", audit={"reminded": len(gate.approvers)}
    )


async def _settled(ctx: StepContext, gate: GateRow) -> StepOutcome:
    spec = _spec(ctx)
    if gate.status == "open":  # a stray signal: nothing was settled
        return StepOutcome(waiting=True, action="ask.timer_ignored")
    values = await asks.the_answer(ctx.store, gate) if gate.status == asks.ANSWERED else {}
    await _post_card(ctx, gate, values)
    at = gate.decided_at.isoformat() if gate.decided_at else None
    output: dict[str, Any] = {
        "status": gate.status,
        "answer": values,
        "answered_by": gate.decided_by if gate.status == asks.ANSWERED else None,
        "answered_at": at if gate.status == asks.ANSWERED else None,
    }
    if gate.status == asks.ANSWERED:
        return StepOutcome(
            output=output, summary=f"answered by <@{gate.decided_by}>", action="ask.completed"
        )
    outcome = StepOutcome(output=output, summary="nobody answered in time", action="ask.timed_out")
    if isinstance(spec.on_timeout, GotoOnTimeout):
        outcome.next_step = spec.on_timeout.goto
    elif spec.on_timeout == "end":
        outcome.next_step = None
    return outcome


async def _post_card(ctx: StepContext, gate: GateRow, values: dict[str, Any]) -> MessageRef:
    spec = _spec(ctx)
    labels = {f.id: f.shown_label for f in spec.fields}
    data = {
        "gate": {
            "id": gate.id,
            "status": gate.status,
            "decided_by": gate.decided_by,
            "decided_at": gate.decided_at.strftime("%Y-%m-%d %H:%M UTC")
            if gate.decided_at
            else None,
        },
        "title": evaluate(ctx, spec.title),
        "text": evaluate(ctx, spec.text),
        "button": spec.button,
        "people": gate.approvers,
        "answer": [
            {"label": labels.get(key, key), "value": "" if value is None else str(value)}
            for key, value in values.items()
        ],
    }
    target = card_target(ctx, spec.user, spec.channel, "ask")
    return await post_card(ctx, gate, target, ChatMessage(CARD, data))


def _spec(ctx: StepContext) -> AskSpec:
    assert isinstance(ctx.step, AskStep)
    return ctx.step.ask


async def _gate(ctx: StepContext, gate_id: str | None = None) -> GateRow:
    return await step_gate(ctx, gate_id, "the question of this step is missing")
