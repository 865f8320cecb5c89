"""The ``workflow`` step: start another workflow as a child run and wait for its end, durably.

The child runs in the parent's thread (its notes and cards appear there, under the
parent's root), as the parent's requester. The first pass starts and links it
(``workflows/subruns.py``) and waits; the child's end queues a signal for this step
(``workflows/lifecycle.py``), whose pass reads the child's outcome: ``succeeded`` goes
on, another ending goes to ``next.<ending>`` or fails the step. Cancelling the parent
cancels the child in the same transaction.
"""

from __future__ import annotations

from workflows import subruns
from workflows.language.steps.flow import SubWorkflowStep
from workflows.lifecycle import LIVE
from workflows.runs import StartRequest, start_run
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate


async def run_subworkflow(ctx: StepContext) -> StepOutcome:
    step = ctx.step
    assert isinstance(step, SubWorkflowStep)
    spec = step.workflow
    if ctx.job_kind == "signal" and subruns.CHILD in ctx.payload:
        return await _ended(ctx, step, str(ctx.payload[subruns.CHILD]))
    child = ctx.workflows.get(spec.name)
    if child is None:
        raise StepError(f"workflow {spec.name!r} is not loaded")
    inputs = dict(evaluate(ctx, spec.inputs))
    thread = ctx.thread
    request = StartRequest(
        child,
        "workflow",
        text=str(inputs.pop("text", "") or ""),
        user_id=ctx.requester,
        channel_id=thread.channel if thread else None,
        dedupe_key=f"workflow:{ctx.run_id}:{step.id}:{ctx.job_id}",
        input=inputs | {"parent_run": ctx.run_id},
        thread_ts=thread.ts if thread else None,
    )
    started = await start_run(ctx.store, request, ctx.clock.now())
    if await subruns.link(ctx.store, started.run_id, ctx.run_id, step.id, ctx.clock.now()):
        return await _ended(ctx, step, started.run_id)  # it ended before the link: go on now
    return StepOutcome(
        output={"run": started.run_id},
        summary=f"started {spec.name} (run {started.run_id}); waiting for it to end",
        waiting=True,
    )


async def _ended(ctx: StepContext, step: SubWorkflowStep, child_id: str) -> StepOutcome:
    child = await subruns.child_run(ctx.store, child_id)
    if child is None:
        raise StepError(f"child run {child_id} is gone")
    if child.status in LIVE:  # a stray signal: keep waiting
        return StepOutcome(waiting=True)
    name = step.workflow.name
    output = {"run": child.id, "status": child.status, "steps": child.context.get("steps", {})}
    summary = f"{name} (run {child.id}) ended {child.status.replace('_', ' ')}"
    if child.status == "succeeded":
        return StepOutcome(output=output, summary=summary)
    target = step.workflow.next.get(child.status)  # type: ignore[call-overload]
    if target is None:
        raise StepError(summary)
    return StepOutcome(output=output, summary=summary, next_step=target)
