"""A worker: keeps up to ``concurrency`` claimed jobs running, renewing their leases.

It polls for due jobs when idle (``poll_seconds``) and immediately when the
engine's ``wakeup`` event is set (a run started in this process, a step that
queued its successor). It also seals new audit records into the hash chain
about once a second (``workflows.audit``). Given an ``IngressLoad`` (``serve``: the
worker shares the event loop with the HTTP ingress), it claims and starts steps only
when the ingress is quiet, or after a short bound (``workflows/ingress_load.py``).
Stopping lets running jobs finish their step; a job cut off by a hard kill is simply
claimed again after its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from workflows import audit
from workflows.engine import ClaimedJob, Engine
from workflows.ingress_load import IngressLoad
from workflows.store import is_database_outage

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 32,
        poll_seconds: float = 0.5,
        seal_seconds: float = 1.0,
        ingress: IngressLoad | None = None,
    ) -> None:
        self.engine = engine
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.seal_seconds = seal_seconds
        self.ingress = ingress
        self._running: set[asyncio.Task[None]] = set()
        # Jobs a live task of ours is executing right now: the only leases we renew.
        self._live_jobs: set[int] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        chores = [
            asyncio.create_task(self._renew_leases()),
            asyncio.create_task(self._seal_audit()),
        ]
        try:
            while not self._stopping.is_set():
                free = self.concurrency - len(self._running)
                # Cleared before claiming, so a wakeup during the claim is not lost.
                self.engine.wakeup.clear()
                jobs = await self._claim(free) if free > 0 else []
                for job in jobs:
                    task = asyncio.create_task(self._execute(job))
                    self._running.add(task)
                    task.add_done_callback(self._done)
                if jobs and len(jobs) == free:
                    await self._wait_for_slot()
                elif not jobs:
                    await self._idle()
        finally:
            for chore in chores:
                chore.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chore
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            await self._seal_once()

    def stop(self) -> None:
        self._stopping.set()
        self.engine.wakeup.set()

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        if self.ingress is not None and await self.ingress.quiet():  # acks first
            limit = min(limit, self.ingress.busy_claims)  # a wakeup meanwhile is still set
        try:
            return await self.engine.claim(limit)
        except Exception as exc:  # database unreachable: back off, keep the process going
            if not is_database_outage(exc):
                raise
            log.warning("claim failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(self.poll_seconds)
            return []

    async def _execute(self, job: ClaimedJob) -> None:
        # A run's steps that are due at once follow each other here, leased to us already.
        next_job: ClaimedJob | None = job
        while next_job is not None:
            if self._stopping.is_set():
                await self.engine.release(next_job)
                return
            job_id = next_job.id
            self._live_jobs.add(job_id)
            try:
                if self.ingress is not None and next_job is not job:  # a running step ended
                    await self.ingress.quiet()
                next_job = await self.engine.execute(next_job)
            finally:  # cancelled or crashed too: its lease must lapse, not be renewed
                self._live_jobs.discard(job_id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("job task failed", exc_info=exc)
        self.engine.wakeup.set()

    async def _wait_for_slot(self) -> None:
        await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_seconds):
                await self.engine.wakeup.wait()

    async def _renew_leases(self) -> None:
        """Extend the leases of jobs a live task here is running, so long steps are not taken
        over. Only those: a job leased to us whose task died (or was never started, after a
        database outage) must lapse and be taken over, however busy this worker is."""
        interval = self.engine.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            job_ids = sorted(self._live_jobs)
            if not job_ids:
                continue
            try:
                await self.engine.queue.renew(job_ids)
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                # Leases lapse and the jobs are taken over: safe, and the database is back soon.
                log.warning("lease renewal failed", extra={"error": type(exc).__name__})

    async def _seal_audit(self) -> None:
        while True:
            await asyncio.sleep(self.seal_seconds)
            await self._seal_once()

    async def _seal_once(self) -> None:
        try:
            await audit.seal_all(self.engine.store)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            log.warning("audit sealing failed, retrying", extra={"error": type(exc).__name__})
