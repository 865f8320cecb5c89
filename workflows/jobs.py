"""The job queue: claims, leases, renewals, hand-backs, retry timing and failure bookkeeping.

Every statement that moves a job between ``queued``, ``leased``, ``done`` and
``failed`` (other than a successful step's completion, ``workflows/completion.py``)
is here, so the rules a lease follows are read in one place:

- a claim takes due jobs of idle runs (one leased job per run at a time), after
  handing back jobs whose lease ran out (their worker died);
- a lease is renewed only for job ids the caller is running right now;
- a job leaves ``leased`` only if this owner still holds it at this attempt.

What a step *means* (its result, the run's next step) is the engine's business;
what the run looks like in Slack is ``workflows/presence.py``'s.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from workflows import audit, lifecycle
from workflows.chat_waits import ChatRateLimited
from workflows.language.spec import RetryPolicy, StepBase
from workflows.limits import Limit, Slots
from workflows.ports import ChatError, Clock
from workflows.store import Store, is_database_outage
from workflows.tables import JobRow, RunRow

log = logging.getLogger(__name__)

TAKEN_OVER = "lease expired; taken over"
"""``jobs.error`` of a job claimed after its worker stopped renewing the lease."""

ITEM_JOB = "item"
"""One item of a ``foreach`` or branch of a ``parallel`` (``workflows/fanout.py``): a run's
items run at once, so they neither wait for nor hold the run's one-job-at-a-time turn."""

MAX_CLAIMS = 20
"""A job claimed this often without finishing (a step that kills its worker) fails."""

CHAT_RETRY = RetryPolicy(attempts=8, initial=2.0, max_delay=120.0)
"""Slack rate limits and outages outlast slack_sdk's in-process retries; a step whose own
policy would give up keeps trying durably for a few minutes instead of failing its run."""


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


@dataclass(frozen=True)
class Retry:
    """A failed attempt that will be tried again: why, and how soon at the earliest."""

    message: str
    policy: RetryPolicy
    not_before: float = 0.0


class JobQueue:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        owner: str,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.slots = Slots(store, owner, lease_seconds)

    async def claim(self, limit: int) -> tuple[list[ClaimedJob], int]:
        """Up to ``limit`` due jobs leased to us, and how many of them were taken over."""
        now = self.clock.now()
        async with self.store.transaction() as session:
            await session.execute(self._expired(now))
            rows = (await session.execute(self._claim_due(now, limit))).all()
            # Read with the claim; a change after this is caught by the completion's version check.
            ids = {row.run_id for row in rows}
            query = select(RunRow).where(RunRow.id.in_(ids))
            runs = {run.id: run for run in await session.scalars(query)} if ids else {}
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
        taken_over = sum(1 for row in rows if row.error == TAKEN_OVER)
        return await self._one_per_run(claimed), taken_over

    def _expired(self, now: datetime) -> Any:
        # Two index-friendly statements rather than one OR (which made PostgreSQL scan every
        # job ever run): jobs whose worker died go back to the queue, then due jobs are taken.
        return (
            update(JobRow)
            .where(JobRow.status == "leased", JobRow.lease_expires_at < now)
            .values(status="queued", lease_owner=None, error=TAKEN_OVER)
            .execution_options(synchronize_session=False)
        )

    def _claim_due(self, now: datetime, limit: int) -> Any:
        # One job per run at a time: a run's jobs see each other's results, and a signal that
        # raced the step still finishing would only be executed twice.
        busy = aliased(JobRow)
        run_idle = ~exists().where(
            busy.run_id == JobRow.run_id,
            busy.status == "leased",
            busy.lease_expires_at >= now,
            busy.kind != ITEM_JOB,
        )
        candidates = (
            select(JobRow.id)
            .where(
                JobRow.status == "queued",
                JobRow.due_at <= now,
                or_(JobRow.kind == ITEM_JOB, run_idle),
            )
            .order_by(JobRow.due_at)
            .limit(limit)
        )
        if not self.store.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        # Materialised: picked once. As an IN (subquery), PostgreSQL may re-run the locking
        # subquery for every queued row (a 2,000-job backlog took minutes per claim).
        picked = candidates.cte("picked").prefix_with("MATERIALIZED")
        return (
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

    async def _one_per_run(self, claimed: list[ClaimedJob]) -> list[ClaimedJob]:
        """Give back all but the first of several jobs of one run claimed in the same batch."""
        keep: dict[str, ClaimedJob] = {}
        extra: list[ClaimedJob] = []
        items = [job for job in claimed if job.kind == ITEM_JOB]
        for job in sorted(claimed, key=lambda j: (j.due_at, j.id)):
            if job.kind == ITEM_JOB:
                continue
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
        return list(keep.values()) + items

    async def renew(self, job_ids: Collection[int]) -> None:
        """Extend the leases (and concurrency slots) of ``job_ids``, the jobs a live task of
        ours is running. Only those: a job leased to us whose task died must lapse."""
        now = self.clock.now()
        async with self.store.transaction() as session:
            await session.execute(
                update(JobRow)
                .where(
                    JobRow.id.in_(job_ids),
                    JobRow.status == "leased",
                    JobRow.lease_owner == self.owner,
                )
                .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
            )
            await self.slots.renew(session, now, job_ids)

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

    async def give_back(self, limits: list[Limit], job: ClaimedJob) -> None:
        """Return the job's concurrency slots; in an outage their leases run out instead."""
        try:
            await self.slots.give_back(limits, job.id)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # Capacity is back within a lease.
            log.warning("could not give back slots", extra={"error": type(exc).__name__})

    async def still_ours(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        now: datetime,
        error: str | None = None,
    ) -> bool:
        """Move the job to ``status`` if we still hold it at this attempt (the lease check)."""
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
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def finish(self, job: ClaimedJob, status: str) -> None:
        async with self.store.transaction() as session:
            await self.still_ours(session, job, status, self.clock.now())

    async def retry_later(self, job: ClaimedJob, step: StepBase, retry: Retry) -> None:
        """Back to the queue after the policy's back-off, one more failure counted and audited."""
        now = self.clock.now()
        delay = max(backoff_seconds(retry.policy, job.failures), retry.not_before)
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
                    error=retry.message,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return
            await audit.append(
                session,
                run_id=job.run_id,
                step_id=step.id,
                actor="switchboard",
                action="step.retry",
                detail={
                    "error": retry.message,
                    "in_s": round(delay, 2),
                    "failures": job.failures + 1,
                },
                now=now,
            )

    async def fail(
        self, job: ClaimedJob, run: RunRow, step_id: str | None, message: str, goto: str | None
    ) -> bool:
        """Close the job failed and, in the same transaction, fail its run or send it on to
        ``goto`` (``on_error.goto``). True when the run failed; nothing changes (False) if
        the lease was lost meanwhile."""
        now = self.clock.now()
        async with self.store.transaction() as session:
            if not await self.still_ours(session, job, "failed", now, error=message):
                return False
            values: dict[str, Any] = {"version": RunRow.version + 1, "updated_at": now}
            if run.root_ts:
                values |= {"channel_id": run.channel_id, "root_ts": run.root_ts}
            if goto:
                values |= {"status": "running", "current_step": goto}
                session.add(JobRow.queued(run.id, goto, "step", now, now))
            else:
                values |= {"status": "failed", "error": message, "finished_at": now}
            await session.execute(update(RunRow).where(RunRow.id == run.id).values(**values))
            if not goto:
                await lifecycle.close_owned(
                    session, [lifecycle.Ending(run.id, "failed", "switchboard")], now
                )
            await audit.append(
                session,
                run_id=run.id,
                step_id=step_id,
                actor="switchboard",
                action="step.failed",
                detail={"error": message, "attempt": job.attempt},
                now=now,
            )
        return not goto


def retry_for(job: ClaimedJob, step: StepBase, exc: Exception, message: str) -> Retry | None:
    """The retry this failure earns, or None when it is final."""
    retryable = isinstance(exc, TimeoutError) or bool(getattr(exc, "retryable", False))
    policy = _retry_policy(step, exc)
    if not retryable or job.failures + 1 >= policy.attempts:
        return None
    # Slack's Retry-After is when it will take the call: no sooner than that.
    not_before = exc.retry_after if isinstance(exc, ChatRateLimited) else 0.0
    return Retry(message, policy, not_before)


def _retry_policy(step: StepBase, exc: Exception) -> RetryPolicy:
    if isinstance(exc, ChatError) and exc.retryable and step.retry.attempts < CHAT_RETRY.attempts:
        return CHAT_RETRY
    return step.retry


def backoff_seconds(policy: RetryPolicy, failures: int) -> float:
    """Delay before the next try after ``failures + 1`` failures (full jitter halves at most)."""
    delay = policy.initial * (2**failures if policy.backoff == "exponential" else 1)
    delay = min(delay, policy.max_delay)
    return float(delay * random.uniform(0.5, 1.0) if policy.jitter else delay)
