"""Routed requests: who owns one, who claimed it, corrections people make, and shadow scoring.

Like approvals, each person's action is one short transaction on the ack path
(the assignment row locked, a guarded status change, a ``signal`` job for the
route step) and the engine does the Slack side. Reassignments and triage picks
are stored as labelled examples: the evaluation data a team accumulates by
simply using the bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit, lifecycle
from workflows.ids import new_id
from workflows.language.steps.route import RouteStep
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import AssignmentRow, ExampleRow, JobRow, RunRow

TRIAGE = "triage"


@dataclass(frozen=True)
class Acted:
    ok: bool
    message: str


async def open_assignment(
    store: Store,
    *,
    run_id: str,
    step_id: str,
    label: str | None,
    predicted: str | None,
    confidence: float | None,
    owner_kind: str,
    owner_id: str,
    shadow: bool,
    now: datetime,
) -> AssignmentRow:
    async with store.transaction() as session:
        existing = await session.scalar(
            select(AssignmentRow).where(
                AssignmentRow.run_id == run_id, AssignmentRow.step_id == step_id
            )
        )
        if existing is not None:
            return existing
        row = AssignmentRow(
            id=new_id(),
            run_id=run_id,
            step_id=step_id,
            label=label,
            predicted_label=predicted,
            confidence=confidence,
            owner_kind=owner_kind,
            owner_id=owner_id,
            status="shadow" if shadow else "open",
            created_at=now,
        )
        session.add(row)
        await audit.append(
            session,
            run_id=run_id,
            step_id=step_id,
            actor="switchboard",
            action="route.opened",
            detail={"label": label, "predicted": predicted, "owner": owner_id, "shadow": shadow},
            now=now,
        )
    return row


async def load(store: Store, assignment_id: str) -> AssignmentRow | None:
    async with store.read() as session:
        row: AssignmentRow | None = await session.get(AssignmentRow, assignment_id)
    return row


async def load_with_workflow(store: Store, assignment_id: str) -> tuple[AssignmentRow, str] | None:
    """The assignment and its run's workflow name: what a permission check needs."""
    async with store.read() as session:
        row = await session.get(AssignmentRow, assignment_id)
        run = await session.get(RunRow, row.run_id) if row is not None else None
    return (row, run.workflow) if row is not None and run is not None else None


async def set_card(store: Store, assignment_id: str, channel: str, ts: str) -> None:
    async with store.transaction() as session:
        row = await session.get(AssignmentRow, assignment_id)
        if row is not None:
            row.channel_id, row.message_ts = channel, ts


async def set_owner(store: Store, assignment_id: str, owner_kind: str, owner_id: str) -> None:
    async with store.transaction() as session:
        row = await session.get(AssignmentRow, assignment_id)
        if row is not None:
            row.owner_kind, row.owner_id = owner_kind, owner_id


async def claim(store: Store, assignment_id: str, user: str, now: datetime) -> Acted:
    return await _act(store, assignment_id, user, now, "claimed", allowed=("open",))


async def close(store: Store, assignment_id: str, user: str, now: datetime) -> Acted:
    return await _act(store, assignment_id, user, now, "closed", allowed=("open", "claimed"))


async def relabel(
    store: Store,
    assignment_id: str,
    user: str,
    label: str,
    now: datetime,
    source: Literal["reassign", "triage", "shadow"],
) -> Acted:
    """A person says where this belongs: re-route it and keep the correction as an example."""
    async with store.transaction(urgent=True) as session:
        row = await session.get(AssignmentRow, assignment_id, with_for_update=True)
        if row is None:
            return Acted(False, "This request is no longer routed here.")
        ended = await _run_ended(session, row)
        if ended is not None:
            return ended
        allowed = ("shadow",) if source == "shadow" else ("open", "claimed")
        if row.status not in allowed:
            return Acted(False, f"This request is already {row.status}.")
        if source != "shadow" and row.label == label:
            # Also what keeps a replayed pick in another process from recording it twice.
            return Acted(False, f"This request is already with {label}.")
        run = await session.get(RunRow, row.run_id)
        text = str((run.context if run else {}).get("input", {}).get("text", ""))
        session.add(
            ExampleRow(
                workflow=run.workflow if run else "",
                step_id=row.step_id,
                text=text,
                label=label,
                predicted=row.predicted_label,
                source=source,
                approved=False,
                run_id=row.run_id,
                created_by=user,
                created_at=now,
            )
        )
        previous = row.label
        row.label = label
        if source == "shadow":
            row.status, row.claimed_by, row.claimed_at = "shadow-decided", user, now
        else:
            row.status, row.claimed_by, row.claimed_at = "open", None, None
        _signal(
            session,
            row,
            now,
            {"event": "relabelled", "label": label, "by": user, "previous": previous},
        )
        await audit.append(
            session,
            run_id=row.run_id,
            step_id=row.step_id,
            actor=user,
            action=f"route.{source}",
            detail={"from": previous, "to": label, "predicted": row.predicted_label},
            now=now,
        )
    return Acted(True, f"Routed to {label}.")


async def shadow_assignment_of(store: Store, run_id: str) -> AssignmentRow | None:
    async with store.read() as session:
        row: AssignmentRow | None = await session.scalar(
            select(AssignmentRow).where(
                AssignmentRow.run_id == run_id, AssignmentRow.status == "shadow"
            )
        )
    return row


@dataclass(frozen=True)
class ShadowReport:
    workflow: str
    decided: int
    correct: int
    undecided: int
    triage_share: float
    per_label: dict[str, tuple[int, int]]
    """label -> (correct, decided) by the label people chose."""
    saved_minutes: float
    """Sum over decided requests of the time people took to route them."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.decided if self.decided else 0.0


async def shadow_report(store: Store, workflow: str) -> ShadowReport:
    async with store.read() as session:
        rows = (
            (
                await session.execute(
                    select(AssignmentRow)
                    .join(RunRow, RunRow.id == AssignmentRow.run_id)
                    .where(
                        RunRow.workflow == workflow,
                        AssignmentRow.status.in_(("shadow", "shadow-decided")),
                    )
                )
            )
            .scalars()
            .all()
        )
    decided = [r for r in rows if r.status == "shadow-decided"]
    per_label: dict[str, tuple[int, int]] = {}
    for row in decided:
        good, total = per_label.get(row.label or TRIAGE, (0, 0))
        per_label[row.label or TRIAGE] = (good + (row.predicted_label == row.label), total + 1)
    saved = sum(
        (r.claimed_at - r.created_at).total_seconds() / 60
        for r in decided
        if r.claimed_at and r.predicted_label == r.label
    )
    triage = sum(1 for r in rows if not r.predicted_label)
    return ShadowReport(
        workflow=workflow,
        decided=len(decided),
        correct=sum(1 for r in decided if r.predicted_label == r.label),
        undecided=len(rows) - len(decided),
        triage_share=triage / len(rows) if rows else 0.0,
        per_label=per_label,
        saved_minutes=round(saved, 1),
    )


async def _act(
    store: Store,
    assignment_id: str,
    user: str,
    now: datetime,
    status: str,
    allowed: tuple[str, ...],
) -> Acted:
    async with store.transaction(urgent=True) as session:
        row = await session.get(AssignmentRow, assignment_id, with_for_update=True)
        if row is None:
            return Acted(False, "This request is no longer routed here.")
        ended = await _run_ended(session, row)
        if ended is not None:
            return ended
        if row.status not in allowed:
            who = f" by <@{row.claimed_by}>" if row.claimed_by else ""
            return Acted(False, f"This request is already {row.status}{who}.")
        row.status = status
        if status == "claimed":
            row.claimed_by, row.claimed_at = user, now
        else:
            row.closed_at = now
            row.claimed_by = row.claimed_by or user
        _signal(session, row, now, {"event": status, "by": user})
        await audit.append(
            session,
            run_id=row.run_id,
            step_id=row.step_id,
            actor=user,
            action=f"route.{status}",
            detail={"assignment": row.id},
            now=now,
        )
    return Acted(True, f"Request {status}.")


async def _run_ended(session: AsyncSession, row: AssignmentRow) -> Acted | None:
    """Refuse an action on a finished run's assignment (read under the row's lock, the lock
    a run's end takes to close it)."""
    run = await session.get(RunRow, row.run_id)
    if run is None or lifecycle.is_live(run):
        return None
    return Acted(False, await lifecycle.ended_note(session, run))


async def finished_note(store: Store, assignment_id: str) -> str | None:
    """Why nothing can be done on this assignment because its run ended, or None."""
    async with store.read() as session:
        row = await session.get(AssignmentRow, assignment_id)
        run = await session.get(RunRow, row.run_id) if row is not None else None
        if run is None or lifecycle.is_live(run):
            return None
        return await lifecycle.ended_note(session, run)


def _signal(
    session: AsyncSession, row: AssignmentRow, now: datetime, payload: dict[str, object]
) -> None:
    session.add(
        JobRow.queued(row.run_id, row.step_id, "signal", now, now, {"assignment": row.id} | payload)
    )


async def labels_for(
    store: Store, workflows: Mapping[str, Workflow], assignment_id: str
) -> list[str]:
    """The labels a request of this assignment may be sent to (its route step's owners)."""
    async with store.read() as session:
        row = await session.get(AssignmentRow, assignment_id)
        run = await session.get(RunRow, row.run_id) if row else None
    workflow = workflows.get(run.workflow) if run else None
    step = (
        next((s for s in workflow.steps if row and s.id == row.step_id), None) if workflow else None
    )
    return sorted(step.route.owners) if isinstance(step, RouteStep) else []
