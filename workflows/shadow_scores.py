"""Shadow mode as scored records: what the bot guessed, how sure it was, what people chose.

A read-only query for ``switchboard report shadow --suggest-threshold``. In shadow mode
the route step records the bot's label (``predicted_label``, empty when the classify
step was unsure) and people then decide (``label``). A threshold is chosen from the
classify step's *best guess* and its confidence, kept in the run's context
(``steps.<classify>.guess`` / ``.confidence``): a request the bot was unsure of still
counts as routed right at a lower threshold if its guess was what people chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connectors.ai.evaluation import Scored
from workflows.routing import TRIAGE
from workflows.store import Store
from workflows.tables import AssignmentRow, RunRow


@dataclass(frozen=True)
class ShadowScores:
    records: list[Scored]
    """One per request people decided; ``truth`` ``None`` when they sent it to triage."""
    unscored: int
    """Decided requests without a confidence (purged runs, a failed provider): left out."""


async def shadow_scores(store: Store, workflow: str) -> ShadowScores:
    async with store.read() as session:
        rows = (
            await session.execute(
                select(AssignmentRow, RunRow.context)
                .join(RunRow, RunRow.id == AssignmentRow.run_id)
                .where(RunRow.workflow == workflow, AssignmentRow.status == "shadow-decided")
                .order_by(AssignmentRow.created_at, AssignmentRow.id)
            )
        ).all()
    records: list[Scored] = []
    unscored = 0
    for row, context in rows:
        record = _scored(row, context if isinstance(context, dict) else {})
        if record is None:
            unscored += 1
        else:
            records.append(record)
    return ShadowScores(records=records, unscored=unscored)


def _scored(row: AssignmentRow, context: dict[str, Any]) -> Scored | None:
    truth = None if row.label in (None, "", TRIAGE) else row.label
    output = _classify_output(context, row.predicted_label)
    guess = str(output.get("guess") or "") if output else (row.predicted_label or "")
    confidence = row.confidence
    if confidence is None and output is not None:
        raw = output.get("confidence")
        confidence = float(raw) if isinstance(raw, (int, float)) else None
    if confidence is None:
        return None
    return Scored(truth=truth, predicted=guess, confidence=min(1.0, max(0.0, confidence)))


def _classify_output(context: dict[str, Any], predicted: str | None) -> dict[str, Any] | None:
    """The classify step's output in the run: the one whose label the route step used when
    a run has several, else the last one (the step nearest the route)."""
    steps = context.get("steps")
    if not isinstance(steps, dict):
        return None
    outputs = [o for o in steps.values() if isinstance(o, dict) and "guess" in o]
    for output in outputs:
        if predicted is not None and output.get("label") == predicted:
            return output
    return outputs[-1] if outputs else None
