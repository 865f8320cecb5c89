"""Running one fan-out item (a job of kind ``item``, ``workflows/fanout.py``) in the engine.

The item's inner step runs as any step does (``Engine._run_step``: ``when``, its timeout,
its connection's limits, scrubbing), but its result is recorded in its own job row by
``ItemRecorder`` instead of moving the run on; a retryable failure is queued again under
the inner step's own retry policy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from connectors.secrets import scrub
from workflows.fanout import FanStep, ItemRecorder, ItemResult
from workflows.jobs import MAX_CLAIMS, ClaimedJob, JobQueue, retry_for
from workflows.language.spec import StepBase
from workflows.language.steps.flow import ForeachStep, ParallelStep
from workflows.language.workflow import Workflow
from workflows.limits import Limit, defer_seconds
from workflows.observe import StepResult
from workflows.ports import ChatError, Clock, MessageRef
from workflows.steps.base import StepContext, StepError, StepOutcome
from workflows.store import Store, is_database_outage
from workflows.tables import RunRow

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What running an item needs of ``workflows.engine.Engine`` (which imports this)."""

    store: Store
    clock: Clock
    owner: str
    queue: JobQueue
    wakeup: asyncio.Event

    def _limits(self, workflow: Workflow, step: StepBase) -> list[Limit]: ...

    def _context(
        self,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        job: ClaimedJob,
        thread: MessageRef | None,
    ) -> StepContext: ...

    async def _run_step(self, ctx: StepContext) -> StepOutcome: ...

    def _observe(
        self, run: RunRow, step: StepBase, result: StepResult, started: float, queue_delay: float
    ) -> None: ...


async def execute_item(engine: Engine, job: ClaimedJob, run: RunRow, workflow: Workflow) -> None:
    """Run one item's inner step and record it (or queue its retry)."""
    step = workflow.step(job.step_id)
    if not isinstance(step, ForeachStep | ParallelStep):
        await engine.queue.finish(job, "failed")
        return
    if run.current_step != step.id:  # joined already (first_success, fail_fast): not needed
        await engine.queue.finish(job, "cancelled")
        return
    index = int(job.payload["index"])
    inner = step.branch(index)
    limits = engine._limits(workflow, inner)
    if limits and not await engine.queue.slots.take(limits, job.id, engine.clock.now()):
        await engine.queue.release(job, after=defer_seconds())  # no slot: as any step waits
        return
    try:
        result = await _run_inner(engine, job, run, workflow, step, inner)
    finally:
        if limits:
            await engine.queue.give_back(limits, job)
    if result is not None:
        await ItemRecorder(engine.store, engine.owner).record(job, step, result, engine.clock)
        engine.wakeup.set()


async def _run_inner(
    engine: Engine, job: ClaimedJob, run: RunRow, workflow: Workflow, step: FanStep, inner: StepBase
) -> ItemResult | None:
    """The item's result; None when it will be retried (already queued again)."""
    started = time.perf_counter()
    thread = MessageRef(run.channel_id, run.root_ts) if run.channel_id and run.root_ts else None
    ctx = engine._context(run, workflow, inner, job, thread)
    if isinstance(step, ForeachStep):
        items = run.context.get("steps", {}).get(step.id, {}).get("items", [])
        index = int(job.payload["index"])
        ctx.scope = dict(ctx.scope) | {"item": items[index], "index": index}
    try:
        if job.attempt > MAX_CLAIMS:
            raise StepError(f"item was started {job.attempt} times without finishing")
        outcome = await engine._run_step(ctx)
    except (StepError, ChatError, TimeoutError) as exc:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            message = f"timed out after {inner.timeout:g}s"
        retry = retry_for(job, inner, exc, message)
        engine._observe(run, inner, "retry" if retry else "failed", started, 0.0)
        if retry is not None:
            await engine.queue.retry_later(job, inner, retry)
            return None
        return ItemResult(False, error=scrub(message))
    except Exception as exc:  # a bug in a step fails its item, not the worker
        if is_database_outage(exc):
            raise
        log.exception("item crashed", extra={"run_id": run.id, "step_id": inner.id})
        return ItemResult(False, error=f"internal error ({type(exc).__name__})")
    engine._observe(run, inner, "ok", started, 0.0)
    return ItemResult(True, output=outcome.output)
