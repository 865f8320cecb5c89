"""The ``route`` step: tell the owner of a request, keep it from being forgotten, learn from fixes.

- ``step``: pick the owner from the label (unknown or missing label: the triage
  channel, with the top candidates as one-click buttons); post the owner card
  (Claim / Reassign / Close); queue the SLA timers; wait.
- ``signal``: someone claimed, closed, reassigned or picked a team: update the
  card, tell the requester in the thread, re-route when relabelled; the run
  moves on when the request is closed (or claimed, with ``until: claim``).
- ``timer``: an SLA is about to be missed (remind) or was missed (escalate).

``shadow: true`` posts no card: the prediction is recorded and compared with
what people decide (``/flow route <run> <label>``), for ``switchboard report shadow``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflows import routing
from workflows.language.steps.route import OwnerDef, RouteSpec, RouteStep, SlaSpec
from workflows.ports import ChatError, ChatMessage, MessageRef
from workflows.steps.base import StepContext, StepError, StepOutcome, Timer, evaluate
from workflows.steps.route_owner import owner_for
from workflows.tables import AssignmentRow


async def run_route(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, RouteStep)
    if ctx.job_kind == "signal":
        return await _on_signal(ctx)
    if ctx.job_kind == "timer":
        return await _on_timer(ctx)
    return await _assign(ctx)


async def _assign(ctx: StepContext) -> StepOutcome:
    spec = _spec(ctx)
    raw = evaluate(ctx, spec.label)
    label = str(raw) if raw not in (None, "") and str(raw) in spec.owners else None
    confidence = evaluate(ctx, spec.confidence) if spec.confidence else None
    chosen = await owner_for(ctx, spec, label)
    kind, owner = chosen.kind, chosen.id
    row = await routing.open_assignment(
        ctx.store,
        run_id=ctx.run_id,
        step_id=ctx.step.id,
        label=label,
        predicted=label,
        confidence=float(confidence) if confidence is not None else None,
        owner_kind=kind,
        owner_id=owner,
        shadow=spec.shadow,
        now=ctx.clock.now(),
    )
    if spec.shadow:
        would = label or routing.TRIAGE
        return StepOutcome(
            output={"assignment": row.id, "predicted": label, "shadow": True},
            summary=f"shadow mode: would route to {would}",
            waiting=True,
            action="route.shadow",
        )
    ref = await _post_card(ctx, row, purpose=_purpose(label, label))
    where = "triage" if label is None else label
    return StepOutcome(
        output={"assignment": row.id, "label": label, "owner": owner, "status": "open"},
        summary=f"routed to {where} ({_where(ref, owner)})"
        + (f"; {chosen.note}" if chosen.note else ""),
        waiting=True,
        timers=_sla_timers(ctx, spec, label),
        action="route.assigned",
    )


async def _on_signal(ctx: StepContext) -> StepOutcome:
    spec = _spec(ctx)
    row = await _assignment(ctx)
    event, by = str(ctx.payload.get("event")), str(ctx.payload.get("by", ""))
    if event == "relabelled" and row.status == "shadow-decided":
        correct = row.predicted_label == row.label
        return StepOutcome(
            output={"label": row.label, "predicted": row.predicted_label, "correct": correct},
            summary=f"routed by <@{by}> to {row.label} ({_verdict(row)})",
            action="route.shadow_compared",
        )
    if event == "relabelled":
        previous = ctx.payload.get("previous")
        previous_label = str(previous) if previous else None
        old_kind, old_owner = row.owner_kind, row.owner_id
        chosen = await owner_for(ctx, spec, row.label)
        kind, owner = chosen.kind, chosen.id
        await routing.set_owner(ctx.store, row.id, kind, owner)
        # The old card stays where it was, updated to say where the request went.
        moved = AssignmentRow(
            id=row.id,
            label=previous_label,
            status="moved",
            claimed_by=by,
            owner_kind=old_kind,
            owner_id=old_owner,
        )
        await _post_card(
            ctx, moved, purpose=_purpose(previous_label, row.predicted_label), moved_to=row.label
        )
        row.owner_kind, row.owner_id = kind, owner
        await _post_card(ctx, row, purpose=_purpose(row.label, row.predicted_label))
        return StepOutcome(
            output={"label": row.label, "owner": owner, "status": "open"},
            summary=f"<@{by}> re-routed it to {row.label}",
            waiting=True,
            action="route.relabelled",
        )
    await _post_card(ctx, row, purpose=_purpose(row.label, row.predicted_label))
    if event == "claimed":
        outcome = StepOutcome(
            output={"status": "claimed", "claimed_by": by},
            summary=f"claimed by <@{by}>",
            action="route.claimed",
            waiting=spec.until == "close",
        )
        return outcome
    return StepOutcome(
        output={"status": "closed", "closed_by": by},
        summary=f"closed by <@{by}>",
        action="route.closed",
    )


async def _on_timer(ctx: StepContext) -> StepOutcome:
    spec = _spec(ctx)
    row = await _assignment(ctx)
    clock = str(ctx.payload.get("sla"))
    met = row.claimed_at is not None if clock == "first_response" else row.closed_at is not None
    if met or row.status in ("closed", "shadow", "shadow-decided"):
        return StepOutcome(waiting=True, action="sla.met")
    sla = _sla_for(spec, row.label)
    phase = str(ctx.payload.get("phase"))
    data = {
        "phase": phase,
        "clock": clock.replace("_", " "),
        "owner": row.owner_id,
        "assignment": {"label": row.label or routing.TRIAGE},
        "run": {"id": ctx.run_id},
    }
    if ctx.thread is not None:
        await ctx.send(
            ctx.thread.channel,
            ChatMessage("sla_notice", data),
            ctx.thread.ts,
            f"sla-{clock}-{phase}",
        )
    if phase == "breach" and sla is not None and sla.escalate_to:
        target = str(evaluate(ctx, sla.escalate_to))
        target = f"@{target}" if target.startswith("U") else target
        await ctx.send(
            target,
            ChatMessage("sla_notice", data | {"escalated": True}),
            None,
            f"sla-{clock}-escalation",
        )
    return StepOutcome(
        waiting=True,
        action=f"sla.{'breached' if phase == 'breach' else 'reminded'}",
        audit={"sla": clock, "label": row.label},
    )


def _sla_timers(ctx: StepContext, spec: RouteSpec, label: str | None) -> list[Timer]:
    sla = _sla_for(spec, label)
    if sla is None:
        return []
    now = ctx.clock.now()
    timers: list[Timer] = []
    for clock, limit in (("first_response", sla.first_response), ("close", sla.close)):
        if limit is None:
            continue
        due = now + dt.timedelta(seconds=limit)
        if sla.remind_before and sla.remind_before < limit:
            timers.append(
                Timer(
                    due - dt.timedelta(seconds=sla.remind_before),
                    "sla",
                    {"sla": clock, "phase": "remind"},
                )
            )
        timers.append(Timer(due, "sla", {"sla": clock, "phase": "breach"}))
    return timers


def _sla_for(spec: RouteSpec, label: str | None) -> SlaSpec | None:
    owner = spec.owners.get(label or "")
    if isinstance(owner, OwnerDef) and owner.sla is not None:
        return owner.sla
    return spec.sla


async def _post_card(
    ctx: StepContext, row: AssignmentRow, purpose: str, moved_to: str | None = None
) -> MessageRef:
    spec = _spec(ctx)
    owner = spec.owners.get(row.label or "")
    group = owner.group if isinstance(owner, OwnerDef) else None
    candidates = evaluate(ctx, spec.candidates) if spec.candidates else []
    data: dict[str, Any] = {
        "assignment": {
            "id": row.id,
            "label": row.label,
            "status": row.status,
            "claimed_by": row.claimed_by,
            "owner": row.owner_id,
            "group": group,
            "group_id": await _group_id(ctx, group),
            "moved_to": moved_to,
        },
        "labels": sorted(spec.owners),
        "request": {
            "text": str(ctx.scope.get("input", {}).get("text", "")),
            "requester": ctx.requester,
        },
        "candidates": [c for c in (candidates or []) if c.get("label") in spec.owners][:3],
        "thread": {"channel": ctx.thread.channel, "ts": ctx.thread.ts} if ctx.thread else None,
        "run": {"id": ctx.run_id, "workflow": ctx.workflow.name},
    }
    template = "triage_card" if row.owner_kind == "triage" else "route_card"
    target = f"@{row.owner_id}" if row.owner_kind == "user" else row.owner_id
    ref = await ctx.send(target, ChatMessage(template, data), None, purpose)
    if moved_to is None and row.message_ts != ref.ts:
        await routing.set_card(ctx.store, row.id, ref.channel, ref.ts)
    return ref


async def _group_id(ctx: StepContext, group: str | None) -> str | None:
    """The owner group's id for a real mention; None (named as written) if Slack can't say."""
    if not group:
        return None
    try:
        return await ctx.chat.usergroup_id(group)
    except ChatError:
        return None


def _verdict(row: AssignmentRow) -> str:
    if row.predicted_label == row.label:
        return "the bot agreed"
    return f"the bot said {row.predicted_label or routing.TRIAGE}"


def _purpose(label: str | None, predicted: str | None) -> str:
    """Each owner a request visited has its own card; the first is ``card``."""
    return "card" if label == predicted else f"card-{label or routing.TRIAGE}"


def _where(ref: MessageRef, owner: str) -> str:
    return owner if owner.startswith("#") else f"<#{ref.channel}>"


async def _assignment(ctx: StepContext) -> AssignmentRow:
    assignment_id = ctx.payload.get("assignment") or (
        (ctx.scope.get("steps") or {}).get(ctx.step.id) or {}
    ).get("assignment")
    row = await routing.load(ctx.store, str(assignment_id))
    if row is None:
        raise StepError("the assignment of this request is missing")
    return row


def _spec(ctx: StepContext) -> RouteSpec:
    assert isinstance(ctx.step, RouteStep)
    return ctx.step.route
