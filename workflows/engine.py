"""The durable engine: claim a due job, run its step, record the result and the next job.

The life of a job::

    queued --claim--> leased --step ok--> done      (+ next job queued, in the same commit)
                         |--step error, retryable--> queued (due after back-off)
                         |--step error, final------> failed (run failed, on_error followed)
                         '--lease expired (worker died)--> claimed again by any worker

Network I/O (Slack, HTTP, AI) happens between the claim transaction and the
completion transaction, never inside one. The completion only lands if this
worker still holds the lease and the run has not moved on (``runs.version``),
so a job executed twice (after a lease expired) records its result once; side
effects are made idempotent by their keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from opentelemetry import trace

from connectors.secrets import scrub, scrub_data
from workflows import audit, fanout_run, lifecycle, ports
from workflows.chat_waits import ChatTimeExcluded, step_deadline
from workflows.completion import Committer, Landed, Lease, completion_for
from workflows.ending_chat import EndingChat
from workflows.expressions import ExpressionError, Expressions
from workflows.function_runs import FunctionCompleter, FunctionEndings
from workflows.jobs import ITEM_JOB, MAX_CLAIMS, ClaimedJob, JobQueue, retry_for
from workflows.language.spec import StepBase
from workflows.language.steps import step_kind
from workflows.language.workflow import Workflow
from workflows.lifecycle import ENDED_JOB
from workflows.limits import Limit, defer_seconds
from workflows.observe import EngineObserver, NullObserver, RunStatus, StepResult
from workflows.outbox import Outbox
from workflows.ports import Chat, ChatError, ChatMessage, Clock, MessageRef
from workflows.presence import Presence, run_view
from workflows.steps import STEP_KINDS
from workflows.steps.base import Services, StepContext, StepError, StepOutcome
from workflows.store import Store, is_database_outage
from workflows.tables import RunRow
from workflows.tracing import emit_run_span, step_span
from workflows.versions import VersionUnavailable, WorkflowVersions

__all__ = ["ClaimedJob", "Engine"]

log = logging.getLogger(__name__)


@dataclass
class Engine:
    store: Store
    workflows: Mapping[str, Workflow]
    chat: Chat
    clock: Clock
    owner: str
    lease_seconds: float = 30.0
    expressions: Expressions = field(default_factory=Expressions)
    services: Services = field(default_factory=Services)
    observer: EngineObserver = field(default_factory=NullObserver)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    versions: WorkflowVersions | None = None
    """Where a run's pinned definition is found; default: over ``workflows``."""
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    """Spans for steps and runs (``workflows/tracing.py``); no-op unless ``bot/tracing.py``."""
    function_steps: FunctionCompleter | None = None
    """Ends Workflow Builder steps at Slack (``workflows/function_runs.py``); None: no chat."""

    def __post_init__(self) -> None:
        self.registry = self.versions or WorkflowVersions(self.store, self.workflows)
        # Steps reach chat only through this: time spent waiting on it is not step time.
        self._chat = ChatTimeExcluded(self.chat)
        self.outbox = Outbox(self.store, self._chat, self.clock)
        self.presence = Presence(self.outbox, self._chat)
        self.ending = EndingChat(
            self.store, self.outbox, self._chat, self.workflows, self.expressions
        )
        self.queue = JobQueue(self.store, self.clock, self.owner, self.lease_seconds)
        steps = self.function_steps
        self.function_endings = FunctionEndings(self.store, steps, self.clock) if steps else None
        self.committer = Committer(self.store, self.clock, self.owner)

    async def claim(self, limit: int) -> list[ClaimedJob]:
        jobs, taken_over = await self.queue.claim(limit)
        for _ in range(taken_over):
            self.observer.lease_taken_over()
        return jobs

    async def release(self, job: ClaimedJob, *, after: float = 0.0) -> None:
        await self.queue.release(job, after=after)

    async def execute(self, job: ClaimedJob) -> ClaimedJob | None:
        """Run one claimed job to its recorded outcome. Never raises for a step's failure.

        Returns the run's next job when it is due at once: it was inserted already leased
        to this worker, so the caller runs it next without another claim round trip.
        """
        run = job.run
        if run is None:
            async with self.store.read() as session:
                run = await session.get(RunRow, job.run_id)
        # The run's chat goes to its own workspace (a multi-workspace chat picks the token).
        scope = ports.CHAT_WORKSPACE.set(
            ports.ChatWorkspace(run.team_id, run.enterprise_id) if run else None
        )
        try:
            return await self._execute_job(job, run)
        finally:
            ports.CHAT_WORKSPACE.reset(scope)

    async def _execute_job(self, job: ClaimedJob, run: RunRow | None) -> ClaimedJob | None:
        if run is not None and job.kind == ENDED_JOB:
            await self._announce_end(job, run)
            return None
        if run is None or run.status not in ("running", "waiting"):
            await self.queue.finish(job, "cancelled")
            return None
        found = await self._definition(run, job)
        if isinstance(found, str):  # never retried: the same definition would fail again
            await self._fail_definition(job, run, found)
            return None
        workflow, step = found
        if job.kind == ITEM_JOB:  # one item of a fan-out: workflows/fanout.py
            await fanout_run.execute_item(self, job, run, workflow)
            return None
        limits = self._limits(workflow, step)
        if limits and not await self.queue.slots.take(limits, job.id, self.clock.now()):
            # Every slot taken: back to the queue for a moment, not counted as an attempt.
            await self.queue.release(job, after=defer_seconds())
            self.observer.step_deferred(workflow.name)
            return None
        try:
            with step_span(self.tracer, run, step.id, _kind(step), job.attempt):
                return await self._execute_step(job, run, workflow, step)
        finally:
            if limits:
                await self.queue.give_back(limits, job)

    async def _announce_end(self, job: ClaimedJob, run: RunRow) -> None:
        """Chat's side of a run's end (``workflows/lifecycle.py``): cards, thread, App Home."""
        if self.function_endings is not None:  # a Workflow Builder step waits for it
            retry = await self.function_endings.complete(run, job.attempt)
            if retry is not None:
                await self.queue.release(job, after=retry)
                return
        try:
            await self.ending.announce(run, job.payload, _scope(run))
        except ChatError as exc:
            if exc.retryable and job.attempt < MAX_CLAIMS:
                await self.queue.release(job, after=min(2.0**job.attempt, 120.0))
                return
            log.warning("could not announce a run's end", extra={"run_id": run.id})
        if job.payload.get("ending") == "cancelled":  # the others are shown as they land
            by = job.payload.get("by")
            await self.presence.ended(run, self.workflows.get(run.workflow), "cancelled", by=by)
        await self.queue.finish(job, "done")
        if job.payload.get("ending") == "cancelled":  # the other endings are counted as they land
            self._run_finished(run, "cancelled", run.finished_at or self.clock.now())

    async def _execute_step(
        self, job: ClaimedJob, run: RunRow, workflow: Workflow, step: StepBase
    ) -> ClaimedJob | None:
        structlog.contextvars.bind_contextvars(
            run_id=run.id, step_id=step.id, workflow=run.workflow
        )  # this job's task only: every log record below carries them
        started = time.perf_counter()
        queue_delay = (self.clock.now() - job.due_at).total_seconds()
        try:
            if job.attempt > MAX_CLAIMS:
                raise StepError(f"step was started {job.attempt} times without finishing")
            thread = await self.presence.root(run, workflow, job)
            if thread is not None:  # known from here on, also to the failure path
                run.channel_id, run.root_ts = thread.channel, thread.ts
            outcome = await self._run_step(self._context(run, workflow, step, job, thread))
            detail = {
                "kind": _kind(step),
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "attempt": job.attempt,
                "output": audit.digest(outcome.output),
            } | outcome.audit
            if thread is not None and not step.quiet and outcome.summary:
                await self.presence.step_note(run, workflow, step, thread, outcome, detail, job)
        except (StepError, ChatError, TimeoutError) as exc:
            result = await self._on_error(job, run, workflow, step, exc)
            self._observe(run, step, result, started, queue_delay)
            return None
        except Exception as exc:  # a bug in a step must fail its run, not kill the worker
            if is_database_outage(exc):
                # The database went away under the step (a restart, a failover): not the
                # step's fault. The job stays leased; when the lease expires it runs again.
                raise
            log.exception("step crashed", extra={"run_id": run.id, "step_id": step.id})
            result = await self._on_error(
                job, run, workflow, step, StepError(f"internal error ({type(exc).__name__})")
            )
            self._observe(run, step, result, started, queue_delay)
            return None
        follow_up = await self._complete(job, run, workflow, step, outcome, detail)
        skipped = outcome.output.get("skipped") is True
        self._observe(run, step, "skipped" if skipped else "ok", started, queue_delay)
        return follow_up

    async def _definition(self, run: RunRow, job: ClaimedJob) -> tuple[Workflow, StepBase] | str:
        """The run's pinned workflow and the job's step in it, or why they cannot run."""
        try:
            workflow = await self.registry.for_run(run.workflow, run.workflow_version)
        except VersionUnavailable as exc:
            return str(exc)
        try:
            return workflow, workflow.step(job.step_id)
        except KeyError:
            return f"step {job.step_id!r} is not in this run's version of {run.workflow!r}"

    async def _fail_definition(self, job: ClaimedJob, run: RunRow, reason: str) -> None:
        """Fail the run once, saying why in its thread, instead of leaving the job to loop."""
        log.warning("run cannot continue: %s", reason, extra={"run_id": run.id})
        if not await self._fail(job, run, None, reason):
            return
        if run.channel_id and run.root_ts:
            data = {"run": run_view(run), "step": {"id": job.step_id}, "error": reason}
            with contextlib.suppress(ChatError):  # a dead thread must not hide the failure
                await self.outbox.send(
                    run.id,
                    job.step_id,
                    "error",
                    run.channel_id,
                    ChatMessage("step_failed", data),
                    thread_ts=run.root_ts,
                    attempt=job.attempt,
                )

    def _limits(self, workflow: Workflow, step: StepBase) -> list[Limit]:
        """The cross-process limits this step runs under (workflow, then connection)."""
        limits = []
        if workflow.concurrency is not None:
            limits.append(Limit(f"workflow:{workflow.name}", workflow.concurrency))
        connection = step.connection()
        registry = self.services.connectors
        if connection is not None and registry is not None:
            size = registry.total_limit(connection)
            if size is not None:
                limits.append(Limit(f"connection:{connection}", size))
        return limits

    def _observe(
        self, run: RunRow, step: StepBase, result: StepResult, started: float, queue_delay: float
    ) -> None:
        seconds = time.perf_counter() - started
        self.observer.step_finished(run.workflow, _kind(step), result, seconds, queue_delay)
        trace.get_current_span().set_attribute("switchboard.result", result)

    def _run_finished(self, run: RunRow, status: RunStatus, now: datetime) -> None:
        """Count the run's end and emit its root span (its steps' spans already point at it)."""
        self.observer.run_finished(run.workflow, status, (now - run.created_at).total_seconds())
        emit_run_span(self.tracer, run, status, now)

    def _context(
        self,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        job: ClaimedJob,
        thread: MessageRef | None,
    ) -> StepContext:
        return StepContext(
            run_id=run.id,
            workflow=workflow,
            step=step,
            attempt=job.attempt,
            scope=_scope(run),
            expressions=self.expressions,
            clock=self.clock,
            send=self.presence.sender(run, step, job),
            upload=self.presence.uploader(run, step),
            thread=thread,
            services=self.services,
            store=self.store,
            chat=self._chat,
            job_kind=job.kind,
            payload=job.payload,
            requester=run.requester,
            job_id=job.id,
            workflows=self.workflows,
        )

    async def _run_step(self, ctx: StepContext) -> StepOutcome:
        step = ctx.step
        if step.when is not None:
            try:
                should_run = self.expressions.truthy(step.when, ctx.scope)
            except ExpressionError as exc:
                raise StepError(f"when: {exc}") from None
            if not should_run:
                return StepOutcome(output={"skipped": True}, summary="skipped (condition false)")
        executor = STEP_KINDS[_kind(step)].execute
        async with step_deadline(step.timeout):
            outcome = await executor(ctx)
        # Stored in runs.context and threaded: a secret a system echoed goes no further.
        outcome.output, outcome.summary = scrub_data(outcome.output), scrub(outcome.summary)
        return outcome

    async def _complete(
        self,
        job: ClaimedJob,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        outcome: StepOutcome,
        detail: dict[str, Any],
    ) -> ClaimedJob | None:
        """Hand the outcome to the committer; the next job, when due now, comes back leased."""
        now = self.clock.now()
        lease = Lease(self.owner, now + timedelta(seconds=self.lease_seconds))
        step_done = completion_for(
            job.id, job.attempt, run, workflow, step, outcome, detail, now, lease
        )
        result = await self.committer.commit(step_done.completion)
        if result.landed is Landed.RUN_MOVED:
            self.wakeup.set()
        if result.landed is not Landed.DONE:
            return None
        values = step_done.completion.run_values
        ending = values.get("status")
        if ending in ("succeeded", "rejected", "timed_out"):
            self._run_finished(run, ending, now)
            by = outcome.output.get("decided_by") if ending == "rejected" else None
            await self.presence.ended(run, workflow, str(ending), by=by)
        follow = step_done.next_step
        if follow is None or not follow.inline:
            if follow is not None:
                self.wakeup.set()  # a later step: any worker claims it when due
            return None
        snapshot = RunRow(**{c.key: getattr(run, c.key) for c in RunRow.__table__.columns})
        for key, value in values.items():
            setattr(snapshot, key, value)
        return ClaimedJob(
            result.job_ids[-1], run.id, follow.step_id, "step", {}, 1, 0, follow.due, snapshot
        )

    async def _on_error(
        self, job: ClaimedJob, run: RunRow, workflow: Workflow, step: StepBase, exc: Exception
    ) -> StepResult:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            message = f"timed out after {step.timeout:g}s"
        retry = retry_for(job, step, exc, message)
        if retry is not None:
            await self.queue.retry_later(job, step, retry)
            return "retry"
        await self._fail(job, run, step, message, workflow)
        await self.presence.notify_failure(run, workflow, step, job, message)
        return "failed"

    async def _fail(
        self,
        job: ClaimedJob,
        run: RunRow,
        step: StepBase | None,
        message: str,
        workflow: Workflow | None = None,
    ) -> bool:
        """Close the job failed and fail the run, or send it to ``on_error.goto`` (of the
        run's own version). True when the run failed."""
        now = self.clock.now()
        goto = workflow.on_error.goto if workflow else None
        if step is None or step.id == goto:
            goto = None  # the error handler itself failed: the run fails
        if step is not None:
            await self.presence.step_failed(run, step, job, message)
        step_id = step.id if step else job.step_id
        failed = await self.queue.fail(job, run, step_id, message, goto)
        if failed:
            await lifecycle.audit_run_failed(self.store, run, step_id, message, now)
            await self.presence.ended(run, workflow, "failed", step=step_id)
            self._run_finished(run, "failed", now)
        return failed


def _kind(step: StepBase) -> str:
    kind = step_kind(step)
    assert kind is not None
    return kind


def _scope(run: RunRow) -> dict[str, Any]:
    return {
        "input": run.context.get("input", {}),
        "steps": run.context.get("steps", {}),
        "run": run_view(run),
    }
