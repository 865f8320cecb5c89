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
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from connectors.secrets import scrub, scrub_data
from workflows import audit
from workflows.chat_waits import ChatRateLimited, ChatTimeExcluded, chat_time, step_deadline
from workflows.completion import Committer, Completion, Landed, job_values
from workflows.expressions import ExpressionError, Expressions
from workflows.language.spec import RetryPolicy, StepBase
from workflows.language.steps import step_kind
from workflows.language.workflow import Workflow
from workflows.limits import Limit, Slots, defer_seconds
from workflows.observe import EngineObserver, NullObserver, StepResult
from workflows.outbox import Outbox
from workflows.ports import Chat, ChatError, ChatMessage, Clock, MessageRef
from workflows.steps import STEP_KINDS
from workflows.steps.base import Services, StepContext, StepError, StepOutcome
from workflows.store import Store, is_database_outage
from workflows.tables import JobRow, RunRow

log = logging.getLogger(__name__)

TAKEN_OVER = "lease expired; taken over"
"""``jobs.error`` of a job claimed after its worker stopped renewing the lease."""

MAX_CLAIMS = 20
"""A job claimed this often without finishing (a step that kills its worker) fails."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    run_id: str
    step_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    failures: int
    due_at: datetime
    run: RunRow | None = None
    """The run as this worker just wrote it, for a step continued inline (saves a read)."""


@dataclass
class Engine:
    store: Store
    workflows: Mapping[str, Workflow]
    chat: Chat | None
    clock: Clock
    owner: str
    lease_seconds: float = 30.0
    expressions: Expressions = field(default_factory=Expressions)
    services: Services = field(default_factory=Services)
    observer: EngineObserver = field(default_factory=NullObserver)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # Steps reach chat only through this: time spent waiting on it is not step time.
        self._chat = None if self.chat is None else ChatTimeExcluded(self.chat)
        self.outbox = Outbox(self.store, self._chat, self.clock)
        self.committer = Committer(self.store, self.clock, self.owner)
        self.slots = Slots(self.store, self.owner, self.lease_seconds)

    async def claim(self, limit: int) -> list[ClaimedJob]:
        now = self.clock.now()
        # Two index-friendly statements rather than one OR (which made PostgreSQL scan every
        # job ever run): jobs whose worker died go back to the queue, then due jobs are taken.
        expired = (
            update(JobRow)
            .where(JobRow.status == "leased", JobRow.lease_expires_at < now)
            .values(status="queued", lease_owner=None, error=TAKEN_OVER)
            .execution_options(synchronize_session=False)
        )
        # One job per run at a time: a run's jobs see each other's results, and a signal that
        # raced the step still finishing would only be executed twice.
        busy = aliased(JobRow)
        run_idle = ~exists().where(
            busy.run_id == JobRow.run_id, busy.status == "leased", busy.lease_expires_at >= now
        )
        candidates = (
            select(JobRow.id)
            .where(JobRow.status == "queued", JobRow.due_at <= now, run_idle)
            .order_by(JobRow.due_at)
            .limit(limit)
        )
        if not self.store.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        # Materialised: picked once. As an IN (subquery), PostgreSQL may re-run the locking
        # subquery for every queued row (a 2,000-job backlog took minutes per claim).
        picked = candidates.cte("picked").prefix_with("MATERIALIZED")
        stmt = (
            update(JobRow)
            .where(JobRow.id == picked.c.id, JobRow.status == "queued")
            .values(
                status="leased",
                lease_owner=self.owner,
                attempt=JobRow.attempt + 1,
                lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                started_at=now,
            )
            .returning(
                JobRow.id,
                JobRow.run_id,
                JobRow.step_id,
                JobRow.kind,
                JobRow.payload,
                JobRow.attempt,
                JobRow.failures,
                JobRow.due_at,
                JobRow.error,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.store.transaction() as session:
            await session.execute(expired)
            rows = (await session.execute(stmt)).all()
            # Read with the claim; a change after this is caught by the completion's version check.
            ids = {row.run_id for row in rows}
            runs = (
                {
                    run.id: run
                    for run in (await session.scalars(select(RunRow).where(RunRow.id.in_(ids))))
                }
                if ids
                else {}
            )
        for row in rows:
            if row.error == TAKEN_OVER:
                self.observer.lease_taken_over()
        claimed = [
            ClaimedJob(
                row.id,
                row.run_id,
                row.step_id,
                row.kind,
                row.payload,
                row.attempt,
                row.failures,
                row.due_at,
                runs.get(row.run_id),
            )
            for row in rows
        ]
        return await self._one_per_run(claimed)

    async def _one_per_run(self, claimed: list[ClaimedJob]) -> list[ClaimedJob]:
        """Give back all but the first of several jobs of one run claimed in the same batch."""
        keep: dict[str, ClaimedJob] = {}
        extra: list[ClaimedJob] = []
        for job in sorted(claimed, key=lambda j: (j.due_at, j.id)):
            if job.run_id in keep:
                extra.append(job)
            else:
                keep[job.run_id] = job
        if extra:
            async with self.store.transaction() as session:
                await session.execute(
                    update(JobRow)
                    .where(JobRow.id.in_([j.id for j in extra]), JobRow.lease_owner == self.owner)
                    .values(status="queued", lease_owner=None, attempt=JobRow.attempt - 1)
                )
        return list(keep.values())

    async def execute(self, job: ClaimedJob) -> ClaimedJob | None:
        """Run one claimed job to its recorded outcome. Never raises for a step's failure.

        Returns the run's next job when it is due at once: it was inserted already leased
        to this worker, so the caller runs it next without another claim round trip.
        """
        run = job.run
        if run is None:
            async with self.store.read() as session:
                run = await session.get(RunRow, job.run_id)
        if run is None or run.status not in ("running", "waiting"):
            await self._finish_job(job, "cancelled")
            return None
        workflow = self.workflows.get(run.workflow)
        if workflow is None:
            await self._fail(job, run, None, f"workflow {run.workflow!r} is no longer defined")
            return None
        step = workflow.step(job.step_id)
        limits = self._limits(workflow, step)
        if limits and not await self.slots.take(limits, job.id, self.clock.now()):
            await self._defer(job, workflow.name)
            return None
        try:
            return await self._execute_step(job, run, workflow, step)
        finally:
            if limits:
                await self._give_back(limits, job)

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
            thread = await self._ensure_root(run, workflow, job)
            if thread is not None:  # known from here on, also to the failure path
                run.channel_id, run.root_ts = thread.channel, thread.ts
            ctx = self._context(run, workflow, step, job, thread)
            outcome = await self._run_step(ctx)
            elapsed_ms = (time.perf_counter() - started) * 1000
            detail = {
                "kind": _kind(step),
                "ms": round(elapsed_ms, 1),
                "attempt": job.attempt,
                "output": audit.digest(outcome.output),
            } | outcome.audit
            if thread is not None and not step.quiet and outcome.summary:
                await self._thread_note(run, step, thread, outcome, detail, job)
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
        follow_up = await self._complete(job, run, workflow, step, outcome, detail, thread)
        skipped = outcome.output.get("skipped") is True
        self._observe(run, step, "skipped" if skipped else "ok", started, queue_delay)
        return follow_up

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

    async def _defer(self, job: ClaimedJob, workflow: str) -> None:
        """Every slot taken: back to the queue for a moment, not counted as an attempt."""
        await self.release(job, after=defer_seconds())
        self.observer.step_deferred(workflow)

    async def _give_back(self, limits: list[Limit], job: ClaimedJob) -> None:
        try:
            await self.slots.give_back(limits, job.id)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # The slots' leases run out instead: capacity is back within a lease.
            log.warning("could not give back slots", extra={"error": type(exc).__name__})

    def _observe(
        self, run: RunRow, step: StepBase, result: StepResult, started: float, queue_delay: float
    ) -> None:
        seconds = time.perf_counter() - started
        self.observer.step_finished(run.workflow, _kind(step), result, seconds, queue_delay)

    def _context(
        self,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        job: ClaimedJob,
        thread: MessageRef | None,
    ) -> StepContext:
        async def send(
            channel: str, message: ChatMessage, thread_ts: str | None, purpose: str
        ) -> MessageRef:
            with chat_time():  # delivering a message is chat's time, not the step's
                return await self.outbox.send(
                    run.id,
                    step.id,
                    purpose,
                    channel,
                    message,
                    thread_ts=thread_ts,
                    attempt=job.attempt,
                )

        return StepContext(
            run_id=run.id,
            workflow=workflow,
            step=step,
            attempt=job.attempt,
            scope=_scope(run),
            expressions=self.expressions,
            clock=self.clock,
            send=send,
            thread=thread,
            services=self.services,
            store=self.store,
            chat=self._chat,
            job_kind=job.kind,
            payload=job.payload,
            requester=run.requester,
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

    async def _ensure_root(
        self, run: RunRow, workflow: Workflow, job: ClaimedJob
    ) -> MessageRef | None:
        """The run's root message, posted once; every step threads under it."""
        if run.root_ts and run.channel_id:
            # Started by someone's own message (intake): that message is the root.
            ref = MessageRef(run.channel_id, run.root_ts)
            if self.chat is not None and job.kind == "step" and not run.context.get("steps"):
                await self._received(run, workflow, ref, job)
            return ref
        channel = run.channel_id or workflow.channel
        if self.chat is None or channel is None:
            return None
        data = {
            "run": _run_view(run),
            "workflow": {"name": workflow.name, "title": workflow.title},
            "input": run.context.get("input", {}),
        }
        return await self.outbox.send(
            run.id, "_run", "root", channel, ChatMessage("run_started", data), attempt=job.attempt
        )

    async def _received(
        self, run: RunRow, workflow: Workflow, ref: MessageRef, job: ClaimedJob
    ) -> None:
        """First reply under an intake message: say we have it (and read it, for reactions)."""
        assert self.chat is not None
        inputs = run.context.get("input", {})
        if inputs.get("fetch_text") and not inputs.get("text"):
            # Read after start_run, so scrubbed here: a reaction's text is request text too.
            text = scrub(await self.chat.message_text(ref.channel, str(inputs.get("message_ts"))))
            run.context = dict(run.context) | {"input": dict(inputs) | {"text": text}}
        data = {"run": _run_view(run), "workflow": {"name": workflow.name, "title": workflow.title}}
        await self.outbox.send(
            run.id,
            "_run",
            "received",
            ref.channel,
            ChatMessage("run_received", data),
            thread_ts=ref.ts,
            attempt=job.attempt,
        )

    async def _thread_note(
        self,
        run: RunRow,
        step: StepBase,
        thread: MessageRef,
        outcome: StepOutcome,
        detail: dict[str, Any],
        job: ClaimedJob,
    ) -> None:
        # A step's first run has one note; each later signal or timer adds its own.
        purpose = "result" if job.kind == "step" else f"{job.kind}-{job.id}"
        data = {
            "step": {"id": step.id, "kind": _kind(step)},
            "summary": outcome.summary,
            "audit": detail,
            "run": _run_view(run),
        }
        await self.outbox.send(
            run.id,
            step.id,
            purpose,
            thread.channel,
            ChatMessage("step_result", data),
            thread_ts=thread.ts,
            attempt=job.attempt,
        )

    async def _complete(
        self,
        job: ClaimedJob,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        outcome: StepOutcome,
        detail: dict[str, Any],
        thread: MessageRef | None,
    ) -> ClaimedJob | None:
        now = self.clock.now()
        next_id, values = self._transition(run, workflow, step, outcome, now)
        due = max(outcome.due_at or now, now)
        # Due now: insert it leased to us and run it inline (no claim round trip, no wait).
        inline = next_id is not None and due <= now
        if thread is not None:
            values |= {"channel_id": thread.channel, "root_ts": thread.ts}
        records = [_record(run, step.id, outcome.action, detail, now)]
        new_jobs = [
            job_values(run.id, step.id, "timer", t.due_at, now, {"timer": t.name} | t.payload)
            for t in outcome.timers
        ]
        if next_id is not None:
            lease = now + timedelta(seconds=self.lease_seconds)
            leased_to = self.owner if inline else None
            new_jobs.append(
                job_values(
                    run.id,
                    next_id,
                    "step",
                    due,
                    now,
                    leased_to=leased_to,
                    lease_expires_at=lease if inline else None,
                )
            )
        elif values.get("status") == "succeeded":
            records.append(_record(run, None, "run.succeeded", {}, now))
        result = await self.committer.commit(
            Completion(job.id, job.attempt, run.id, run.version, values, records, new_jobs)
        )
        if result.landed is Landed.RUN_MOVED:
            self.wakeup.set()
        if result.landed is not Landed.DONE:
            return None
        if values.get("status") == "succeeded":
            self.observer.run_finished(
                run.workflow, "succeeded", (now - run.created_at).total_seconds()
            )
        if next_id is not None and inline:
            snapshot = RunRow(**{c.key: getattr(run, c.key) for c in RunRow.__table__.columns})
            for key, value in values.items():
                setattr(snapshot, key, value)
            return ClaimedJob(result.job_ids[-1], run.id, next_id, "step", {}, 1, 0, due, snapshot)
        if next_id is not None:
            self.wakeup.set()
        return None

    async def release(self, job: ClaimedJob, *, after: float = 0.0) -> None:
        """Hand a job leased to us back to the queue, due ``after`` seconds from now (a worker
        stopping before running it; a step waiting for a concurrency slot)."""
        values: dict[str, Any] = {
            "status": "queued",
            "lease_owner": None,
            "attempt": JobRow.attempt - 1,
        }
        if after > 0:
            values["due_at"] = self.clock.now() + timedelta(seconds=after)
        async with self.store.transaction() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.id == job.id, JobRow.lease_owner == self.owner)
                .values(**values)
            )

    def _transition(
        self, run: RunRow, workflow: Workflow, step: StepBase, outcome: StepOutcome, now: datetime
    ) -> tuple[str | None, dict[str, Any]]:
        """Where the run goes after this outcome: (next step or None, run columns to set)."""
        values: dict[str, Any] = {"version": run.version + 1, "updated_at": now}
        if outcome.output or not outcome.waiting:
            steps = dict(run.context.get("steps", {}))
            steps[step.id] = dict(steps.get(step.id) or {}) | outcome.output
            values["context"] = dict(run.context) | {"steps": steps}
        if outcome.waiting:
            return None, values | {"status": "waiting", "current_step": step.id}
        next_id = (
            outcome.next_step
            if outcome.overrides_next
            else (step.goto or workflow.next_step_id(step.id))
        )
        values["current_step"] = next_id or step.id
        if next_id is None:
            return None, values | {"status": "succeeded", "finished_at": now}
        if outcome.due_at is not None and outcome.due_at > now:
            return next_id, values | {"status": "waiting"}
        return next_id, values | {"status": "running"}

    async def _still_ours(
        self, session: Any, job: ClaimedJob, status: str, now: datetime, error: str | None = None
    ) -> bool:
        result = await session.execute(
            update(JobRow)
            .where(
                JobRow.id == job.id,
                JobRow.status == "leased",
                JobRow.lease_owner == self.owner,
                JobRow.attempt == job.attempt,
            )
            .values(status=status, finished_at=now, lease_owner=None, error=error)
        )
        return bool(result.rowcount == 1)

    async def _finish_job(self, job: ClaimedJob, status: str) -> None:
        async with self.store.transaction() as session:
            await self._still_ours(session, job, status, self.clock.now())

    async def _on_error(
        self, job: ClaimedJob, run: RunRow, workflow: Workflow, step: StepBase, exc: Exception
    ) -> StepResult:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            message = f"timed out after {step.timeout:g}s"
        retryable = isinstance(exc, TimeoutError) or bool(getattr(exc, "retryable", False))
        if retryable and job.failures + 1 < _retry_policy(step, exc).attempts:
            # Slack's Retry-After is when it will take the call: no sooner than that.
            not_before = exc.retry_after if isinstance(exc, ChatRateLimited) else 0.0
            policy = _retry_policy(step, exc)
            await self._retry_later(job, run, step, message, policy, not_before)
            return "retry"
        await self._fail(job, run, step, message)
        if workflow.on_error.notify and self.chat is not None:
            data = {"run": _run_view(run), "error": message, "step": step.id}
            await self.outbox.send(
                run.id,
                step.id,
                "on_error",
                workflow.on_error.notify,
                ChatMessage("run_failed", data),
                attempt=job.attempt,
            )
        return "failed"

    async def _retry_later(
        self,
        job: ClaimedJob,
        run: RunRow,
        step: StepBase,
        message: str,
        policy: RetryPolicy,
        not_before: float,
    ) -> None:
        now = self.clock.now()
        delay = max(backoff_seconds(policy, job.failures), not_before)
        async with self.store.transaction() as session:
            result = await session.execute(
                update(JobRow)
                .where(
                    JobRow.id == job.id,
                    JobRow.lease_owner == self.owner,
                    JobRow.attempt == job.attempt,
                    JobRow.status == "leased",
                )
                .values(
                    status="queued",
                    due_at=now + timedelta(seconds=delay),
                    lease_owner=None,
                    failures=JobRow.failures + 1,
                    error=message,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return
            await audit.append(
                session,
                run_id=run.id,
                step_id=step.id,
                actor="switchboard",
                action="step.retry",
                detail={"error": message, "in_s": round(delay, 2), "failures": job.failures + 1},
                now=now,
            )

    async def _fail(
        self, job: ClaimedJob, run: RunRow, step: StepBase | None, message: str
    ) -> None:
        now = self.clock.now()
        workflow = self.workflows.get(run.workflow)
        goto = workflow.on_error.goto if workflow else None
        thread = MessageRef(run.channel_id, run.root_ts) if run.channel_id and run.root_ts else None
        if thread is not None and self.chat is not None and step is not None:
            data = {"run": _run_view(run), "step": {"id": step.id}, "error": message}
            try:
                await self.outbox.send(
                    run.id,
                    step.id,
                    "error",
                    thread.channel,
                    ChatMessage("step_failed", data),
                    thread_ts=thread.ts,
                    attempt=job.attempt,
                )
            except ChatError as exc:
                log.warning(
                    "could not thread a failure", extra={"run_id": run.id, "error": str(exc)}
                )
        async with self.store.transaction() as session:
            if not await self._still_ours(session, job, "failed", now, error=message):
                return
            values: dict[str, Any] = {"version": RunRow.version + 1, "updated_at": now}
            if run.root_ts:
                values |= {"channel_id": run.channel_id, "root_ts": run.root_ts}
            if goto and step is not None and step.id != goto:
                values |= {"status": "running", "current_step": goto}
                session.add(JobRow.queued(run.id, goto, "step", now, now))
            else:
                values |= {"status": "failed", "error": message, "finished_at": now}
                self.observer.run_finished(
                    run.workflow, "failed", (now - run.created_at).total_seconds()
                )
            await session.execute(update(RunRow).where(RunRow.id == run.id).values(**values))
            await audit.append(
                session,
                run_id=run.id,
                step_id=step.id if step else None,
                actor="switchboard",
                action="step.failed",
                detail={"error": message, "attempt": job.attempt},
                now=now,
            )


CHAT_RETRY = RetryPolicy(attempts=8, initial=2.0, max_delay=120.0)
"""Slack rate limits and outages outlast slack_sdk's in-process retries; a step whose own
policy would give up keeps trying durably for a few minutes instead of failing its run."""


def _retry_policy(step: StepBase, exc: Exception) -> RetryPolicy:
    if isinstance(exc, ChatError) and exc.retryable and step.retry.attempts < CHAT_RETRY.attempts:
        return CHAT_RETRY
    return step.retry


def backoff_seconds(policy: RetryPolicy, failures: int) -> float:
    """Delay before the next try after ``failures + 1`` failures (full jitter halves at most)."""
    delay = policy.initial * (2**failures if policy.backoff == "exponential" else 1)
    delay = min(delay, policy.max_delay)
    return float(delay * random.uniform(0.5, 1.0) if policy.jitter else delay)


def _kind(step: StepBase) -> str:
    kind = step_kind(step)
    assert kind is not None
    return kind


def _record(
    run: RunRow, step_id: str | None, action: str, detail: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return audit.record(
        run_id=run.id, step_id=step_id, actor="switchboard", action=action, detail=detail, now=now
    )


def _run_view(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow": run.workflow,
        "requester": run.requester,
        "channel": run.channel_id,
        "status": run.status,
    }


def _scope(run: RunRow) -> dict[str, Any]:
    return {
        "input": run.context.get("input", {}),
        "steps": run.context.get("steps", {}),
        "run": _run_view(run),
    }
