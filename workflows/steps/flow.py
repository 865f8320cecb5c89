"""Executors of ``foreach`` and ``parallel``: fan out on the first pass, join on the signal.

The first pass (``job_kind == "step"``) decides what to fan out and hands the first item
jobs to the engine with its (waiting) result; ``workflows/fanout.py`` runs and records
the items and queues the join, a signal job carrying the pass id. The join reads the
recorded results in order and is the step's real result (``steps.<id>.results`` etc.).
"""

from __future__ import annotations

import uuid
from typing import Any

from workflows.fanout import JOIN, first_items, recorded
from workflows.language.steps.flow import MAX_ITEMS, ForeachStep, ParallelStep
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate
from workflows.tables import JobRow


async def run_foreach(ctx: StepContext) -> StepOutcome:
    step = ctx.step
    assert isinstance(step, ForeachStep)
    if ctx.job_kind == "signal" and JOIN in ctx.payload:
        return await _join_foreach(ctx, step, str(ctx.payload[JOIN]))
    items = evaluate(ctx, step.foreach.items)
    if not isinstance(items, list | tuple):
        raise StepError(f"foreach items must be a list, not {type(items).__name__}")
    if len(items) > MAX_ITEMS:
        raise StepError(f"foreach takes at most {MAX_ITEMS} items, got {len(items)}")
    if not items:
        empty: dict[str, Any] = {"items": [], "results": [], "errors": [], "failed": 0}
        return StepOutcome(output=empty, summary="no items")
    width = min(step.foreach.concurrency, len(items))
    return StepOutcome(
        output={"items": list(items)},
        summary=f"{len(items)} items, {width} at a time",
        waiting=True,
        fan_out=first_items(step, len(items), uuid.uuid4().hex[:16]),
    )


async def _join_foreach(ctx: StepContext, step: ForeachStep, pass_id: str) -> StepOutcome:
    rows = await recorded(ctx.store, ctx.run_id, step.id, pass_id)
    items = ctx.scope["steps"].get(step.id, {}).get("items", [])
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for index in range(len(items)):
        row = rows.get(index)
        results.append(row.payload.get("result") if row is not None and _ok(row) else None)
        if row is not None and not _ok(row):
            errors.append({"index": index, "error": row.error})
    if errors and step.foreach.on_failure == "fail_fast":
        first = errors[0]
        raise StepError(f"item {first['index']} failed: {first['error']}")
    ok = len(items) - len(errors)
    return StepOutcome(
        output={"results": results, "errors": errors, "failed": len(errors)},
        summary=f"{len(items)} items: {ok} ok" + (f", {len(errors)} failed" if errors else ""),
        audit={"items": len(items), "failed": len(errors)},
    )


async def run_parallel(ctx: StepContext) -> StepOutcome:
    step = ctx.step
    assert isinstance(step, ParallelStep)
    if ctx.job_kind == "signal" and JOIN in ctx.payload:
        return await _join_parallel(ctx, step, str(ctx.payload[JOIN]))
    branches = len(step.parallel.steps)
    return StepOutcome(
        summary=f"{branches} branches at once",
        waiting=True,
        fan_out=first_items(step, branches, uuid.uuid4().hex[:16]),
    )


async def _join_parallel(ctx: StepContext, step: ParallelStep, pass_id: str) -> StepOutcome:
    rows = await recorded(ctx.store, ctx.run_id, step.id, pass_id)
    outputs: dict[str, Any] = {branch.id: None for branch in step.parallel.steps}
    errors: dict[str, str | None] = {}
    done: list[tuple[Any, int, str]] = []
    for index, branch in enumerate(step.parallel.steps):
        row = rows.get(index)
        if row is None:
            continue
        if _ok(row):
            outputs[branch.id] = row.payload.get("result")
            done.append((row.finished_at, row.id, branch.id))
        else:
            errors[branch.id] = row.error
    if step.parallel.join == "all" and errors:
        branch_id, error = next(iter(errors.items()))
        raise StepError(f"branch {branch_id} failed: {error}")
    if not done:
        raise StepError("every branch failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    winner = min(done)[2] if step.parallel.join == "first_success" else None
    summary = f"{len(done)} of {len(step.parallel.steps)} branches succeeded"
    if winner:
        summary += f"; {winner} first"
    return StepOutcome(
        output=outputs | {"winner": winner, "errors": errors},
        summary=summary,
        audit={"branches": len(step.parallel.steps), "failed": len(errors)},
    )


def _ok(row: JobRow | None) -> bool:
    return row is not None and row.status == "done"
