"""Examples learned from people, fed back to the classify step they correct (``learn: true``).

Every triage pick, reassignment and shadow-mode decision is a row of ``labelled_examples``
(``workflows/routing.relabel``), keyed by the *route* step it was made on. A classify step
with ``learn: true`` learns from the route steps that route on its label
(``{{ steps.<id>.label }}``): their examples whose label is one of the step's labels, the
newest decision per text (a text corrected twice counts once, as its last correction), and,
with ``learn_after_approval: true``, only those an owner approved. ``switchboard examples``
lists, exports, approves and removes them; a removed example stops counting at the next
classification (the model for the smaller set is refitted or still cached).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from connectors.ai.base import LabelSpec
from workflows import audit
from workflows.language.steps.ai import ClassifyStep
from workflows.language.steps.route import RouteStep
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import ExampleRow

MAX_LEARNED = 2_000
"""Newest learned examples a step uses at most: bounds each refit's cost."""


@dataclass(frozen=True)
class Learned:
    id: int
    workflow: str
    step_id: str
    text: str
    label: str
    predicted: str | None
    source: str
    approved: bool
    run_id: str | None
    created_by: str | None
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "step": self.step_id,
            "text": self.text,
            "label": self.label,
            "predicted": self.predicted,
            "source": self.source,
            "approved": self.approved,
            "run_id": self.run_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


def with_learned(labels: list[LabelSpec], learned: Sequence[tuple[str, str]]) -> list[LabelSpec]:
    """``labels`` with each learned (text, label) added to its label's ungrouped examples
    (the local model clusters those into kinds of request of about ten each)."""
    extra: dict[str, list[str]] = {}
    for text, label in learned:
        extra.setdefault(label, []).append(text)
    return [
        label.model_copy(update={"examples": [*label.examples, *extra[label.name]]})
        if label.name in extra
        else label
        for label in labels
    ]


def route_steps_of(workflow: Workflow, classify_id: str) -> list[str]:
    """Ids of the route steps whose ``label`` reads this classify step's output."""
    reads = re.compile(rf"\bsteps\.{re.escape(classify_id)}\.(label|guess)\b")
    return [
        s.id for s in workflow.steps if isinstance(s, RouteStep) and reads.search(s.route.label)
    ]


def _learned(row: ExampleRow) -> Learned:
    return Learned(
        id=row.id,
        workflow=row.workflow,
        step_id=row.step_id,
        text=row.text,
        label=row.label,
        predicted=row.predicted,
        source=row.source,
        approved=row.approved,
        run_id=row.run_id,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def examples_for(store: Store, workflow: Workflow, step: ClassifyStep) -> list[Learned]:
    """What ``step`` learns from now: see the module docstring."""
    route_ids = route_steps_of(workflow, step.id)
    if not route_ids:
        return []
    query = (
        select(ExampleRow)
        .where(
            ExampleRow.workflow == workflow.name,
            ExampleRow.step_id.in_(route_ids),
            ExampleRow.label.in_(list(step.classify.labels)),
        )
        .order_by(ExampleRow.id.desc())
        .limit(MAX_LEARNED)
    )
    if step.classify.learn_after_approval:
        query = query.where(ExampleRow.approved.is_(True))
    async with store.read() as session:
        rows = (await session.scalars(query)).all()
    newest: dict[str, Learned] = {}
    for row in rows:
        text = row.text.strip()
        if text and text not in newest:
            newest[text] = _learned(row)
    return sorted(newest.values(), key=lambda e: e.id)


async def list_examples(
    store: Store, workflow: str | None = None, step_id: str | None = None
) -> list[Learned]:
    query = select(ExampleRow).order_by(ExampleRow.id)
    if workflow is not None:
        query = query.where(ExampleRow.workflow == workflow)
    if step_id is not None:
        query = query.where(ExampleRow.step_id == step_id)
    async with store.read() as session:
        return [_learned(row) for row in (await session.scalars(query)).all()]


async def remove(store: Store, ids: Sequence[int], actor: str, now: datetime) -> list[int]:
    """Delete these examples (audited: ``example.removed``); returns the ids that existed."""
    return await _change(store, ids, actor, now, "removed")


async def approve(store: Store, ids: Sequence[int], actor: str, now: datetime) -> list[int]:
    """Mark these examples approved, what ``learn_after_approval`` waits for (audited)."""
    return await _change(store, ids, actor, now, "approved")


async def _change(
    store: Store, ids: Sequence[int], actor: str, now: datetime, change: str
) -> list[int]:
    async with store.transaction() as session:
        rows = (await session.scalars(select(ExampleRow).where(ExampleRow.id.in_(ids)))).all()
        for row in rows:
            # The trail keeps which correction changed, never its text.
            detail = {"example": row.id, "label": row.label, "source": row.source}
            await audit.append(
                session,
                run_id=row.run_id,
                step_id=row.step_id,
                actor=actor,
                action=f"example.{change}",
                detail=detail,
                now=now,
            )
        found = sorted(row.id for row in rows)
        if change == "removed":
            await session.execute(delete(ExampleRow).where(ExampleRow.id.in_(found)))
        else:
            await session.execute(
                update(ExampleRow).where(ExampleRow.id.in_(found)).values(approved=True)
            )
    return found
