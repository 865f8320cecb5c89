"""What the two steps that wait on people share (``approve``, ``ask``).

Both open a gate (``workflows/approvals.py``), post its card where the step says
(a DM, a channel, or the run's thread), turn ``@group``/``#channel``/expression
references into user IDs, and find their gate again when a click or a timer wakes
them. One copy of each here keeps the two steps' rules from drifting apart.
"""

from __future__ import annotations

from workflows import approvals
from workflows.ports import ChatError, ChatMessage, MessageRef
from workflows.steps.base import StepContext, StepError, evaluate
from workflows.tables import GateRow


def card_target(
    ctx: StepContext, user: str | None, channel: str | None, kind: str
) -> tuple[str, str | None]:
    """Where the card goes: a DM to ``user``, ``channel``, else the run's thread."""
    if user:
        return f"@{evaluate(ctx, user)}", None
    if channel:
        return str(evaluate(ctx, channel)), None
    if ctx.thread is None:
        raise StepError(f"{kind} has no channel and the run has no thread")
    return ctx.thread.channel, ctx.thread.ts


async def post_card(
    ctx: StepContext, gate: GateRow, target: tuple[str, str | None], message: ChatMessage
) -> MessageRef:
    """Post (or, on a retry, update) the gate's card and remember where it is."""
    channel, thread_ts = target
    ref = await ctx.send(channel, message, thread_ts, "card")
    if gate.message_ts != ref.ts:
        await approvals.set_card(ctx.store, gate.id, ref.channel, ref.ts)
    return ref


async def resolve_people(ctx: StepContext, refs: list[str], what: str) -> list[str]:
    """User IDs from IDs, ``@group`` handles, ``#channel`` members and expressions."""
    people: list[str] = []
    for ref in refs:
        value = evaluate(ctx, ref)
        for item in value if isinstance(value, list) else [value]:
            text = str(item or "").strip()  # an expression that gave nothing names no one
            try:
                if text.startswith("@"):
                    people += await ctx.chat.usergroup_members(text[1:])
                elif text.startswith("#"):
                    people += await ctx.chat.channel_members(text)
                elif text:
                    people.append(text)
            except ChatError as exc:
                raise StepError(f"{what} {text}: {exc}", retryable=exc.retryable) from None
    return sorted(set(people))


async def step_gate(ctx: StepContext, gate_id: str | None, missing: str) -> GateRow:
    """The step's gate: by id (a click, a timer), else the one its output names."""
    gate_id = gate_id or str(((ctx.scope.get("steps") or {}).get(ctx.step.id) or {}).get("gate"))
    gate = await approvals.load_gate(ctx.store, gate_id)
    if gate is None:
        raise StepError(missing)
    return gate
