"""The scheduler: APScheduler's asyncio scheduler fires cron schedules and threshold checks.

Every ``serve`` process may run one (``worker`` processes do not). Nothing here
needs to be the only one: schedule fires are made exactly-once by their dedupe
key (``workflows/schedules.py``) and threshold fires by their state row's
generation (``workflows/thresholds.py``). APScheduler only decides *when* to
wake up; *what* is due is computed from the injected clock, the same pure
functions the tests and ``switchboard schedules`` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from connectors.registry import ConnectorRegistry
from workflows.language.workflow import Workflow
from workflows.ports import Clock
from workflows.retention import policy_for, purge
from workflows.runs import Started
from workflows.schedules import ScheduleEntry, latest_fire_time, schedule_entries, start_fire
from workflows.store import Store
from workflows.thresholds import CheckResult, ThresholdChecker, ThresholdEntry, threshold_entries

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, Workflow],
        clock: Clock,
        *,
        connectors: ConnectorRegistry | None = None,
        wakeup: asyncio.Event | None = None,
        retention_days: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.wakeup = wakeup
        self.schedules: list[ScheduleEntry] = schedule_entries(workflows.values())
        self.thresholds: list[ThresholdEntry] = threshold_entries(workflows.values())
        self.workflows = workflows
        self.retention_days = retention_days
        self.checker = ThresholdChecker(store, clock, connectors, wakeup=wakeup)
        self._aps: AsyncIOScheduler | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def fire_due(self, entry: ScheduleEntry) -> Started | None:
        """Start the run of ``entry``'s fire that is due now, if any (any number of times)."""
        now = self.clock.now()
        fire_time = latest_fire_time(entry.spec, now, entry.window)
        if fire_time is None:
            return None
        started = await start_fire(self.store, entry, fire_time, now)
        if not started.duplicate:
            log.info(
                "schedule fired",
                extra={
                    "workflow": entry.workflow.name,
                    "fire_time": fire_time.isoformat(),
                    "run_id": started.run_id,
                },
            )
            if self.wakeup is not None:
                self.wakeup.set()
        return started

    async def catch_up(self) -> list[Started]:
        """At start-up: start the missed most recent fire of every ``run_once`` schedule."""
        started = []
        for entry in self.schedules:
            if entry.spec.misfire == "run_once":
                result = await self.fire_due(entry)
                if result is not None:
                    started.append(result)
        return started

    async def check_threshold(self, entry: ThresholdEntry) -> CheckResult:
        return await self.checker.check(entry)

    async def purge_expired(self) -> int:
        """Retention, hourly: safe in every process at once (each run is purged once). The
        policy is read from the definitions now: a reload that adds ``retention:`` counts."""
        policy = policy_for(self.workflows.values(), self.retention_days)
        if not policy.active:
            return 0
        return await purge(self.store, policy, self.clock.now(), actor="scheduler")

    async def start(self) -> None:
        known = set(self.checker.connectors.names) if self.checker.connectors else set()
        for threshold in self.thresholds:
            if threshold.spec.connection not in known:
                # Checked anyway (each check records the error), but say so once, up front.
                log.error(
                    "threshold %s of workflow %s reads undeclared connection %r",
                    threshold.index,
                    threshold.workflow.name,
                    threshold.spec.connection,
                )
        await self._guarded(self.catch_up, "catch-up")
        aps = AsyncIOScheduler(timezone="UTC")
        for schedule in self.schedules:
            aps.add_job(
                self._job,
                trigger=schedule.trigger(),
                args=[self.fire_due, schedule, schedule.job_id],
                id=schedule.job_id,
                misfire_grace_time=max(1, int(schedule.window)),
                coalesce=True,
            )
        for threshold in self.thresholds:
            aps.add_job(
                self._job,
                trigger=IntervalTrigger(seconds=threshold.spec.every, timezone="UTC"),
                args=[self.check_threshold, threshold, threshold.job_id],
                id=threshold.job_id,
                coalesce=True,
            )
        aps.add_job(
            self._job,
            trigger=IntervalTrigger(hours=1, timezone="UTC"),
            args=[lambda _: self.purge_expired(), None, "retention"],
            id="retention",
            coalesce=True,
        )
        aps.start()
        self._aps = aps
        log.info(
            "scheduler started",
            extra={"schedules": len(self.schedules), "thresholds": len(self.thresholds)},
        )

    @property
    def running(self) -> bool:
        """Whether this process's scheduler is up (for ``/readyz``)."""
        return self._aps is not None and bool(self._aps.running)

    def jobs(self) -> list[Any]:
        """APScheduler's jobs (id, trigger, next_run_time), for inspection."""
        return list(self._aps.get_jobs()) if self._aps is not None else []

    async def stop(self) -> None:
        """Stop waking up; let fires already under way finish their one transaction."""
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop iteration
        self._aps = None
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _job(self, action: Callable[[Any], Awaitable[Any]], entry: Any, name: str) -> None:
        # A task of our own, shielded: APScheduler cancels its tasks on shutdown, and a fire
        # cut off there would be lost for this process.
        task = asyncio.create_task(self._guarded(lambda: action(entry), name))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    async def _guarded(self, action: Callable[[], Awaitable[Any]], name: str) -> None:
        try:
            await action()
        except (OSError, SQLAlchemyError) as exc:  # database away: the next wake-up tries again
            log.warning("scheduled job failed: %s: %s", name, type(exc).__name__)
        except Exception:  # a bug must not stop the scheduler's other jobs
            log.exception("scheduled job crashed: %s", name)
