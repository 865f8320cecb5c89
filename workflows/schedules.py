"""Cron schedules: when a ``schedule`` trigger fires, and starting its run exactly once.

Fire times are a pure function of (spec, now), computed with APScheduler's
``CronTrigger`` in the trigger's IANA time zone and returned in UTC, so tests
drive them with a controllable clock instead of waiting for wall-clock times.

Exactly once: every process may run the scheduler. A fire starts its run with
``dedupe_key = schedule:{workflow}:{index}:{fire time, UTC ISO}``; the unique
key on ``requests.dedupe_key`` lets the first process win and makes the others'
attempts find that run. No lock, no leader.

Daylight saving time (local wall-clock semantics, like Vixie cron):

* a local time skipped when clocks go forward fires when the clock jumps over
  it (``30 1 * * *`` in Europe/London fires at 02:30 BST on the last Sunday
  of March);
* a local time repeated when clocks go back fires once, at its first
  occurrence, when the cron names fixed hours; crons with a wildcard hour
  field (``0 * * * *``, ``*/15 */2 * * *``) keep firing every real hour.

Misfires: ``skip`` runs only fires the scheduler sees on time (within
``ON_TIME_WINDOW``). ``run_once`` also catches up at start-up: if the most
recent fire time is at most ``grace`` old, it is started (the same dedupe key
makes it one run however many processes start together, and none if it ran).
Older or earlier missed fires are never run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from workflows.language.triggers import ScheduleSpec, ScheduleTrigger
from workflows.language.workflow import Workflow
from workflows.runs import Started, StartRequest, start_run
from workflows.store import Store

ON_TIME_WINDOW = 60.0
"""Seconds after its fire time that a ``skip`` schedule's fire still counts as on time."""

_HOUR_FIELD = CronTrigger.FIELD_NAMES.index("hour")
_STEP = timedelta(microseconds=1)


@dataclass(frozen=True)
class ScheduleEntry:
    """One ``schedule`` trigger: the ``index``-th trigger of ``workflow``."""

    workflow: Workflow
    index: int
    spec: ScheduleSpec

    @property
    def job_id(self) -> str:
        return f"schedule:{self.workflow.name}:{self.index}"

    @property
    def window(self) -> float:
        """How late a fire may still be started, in seconds."""
        return self.spec.grace if self.spec.misfire == "run_once" else ON_TIME_WINDOW

    def trigger(self) -> CronTrigger:
        return cron_trigger(self.spec)


def schedule_entries(workflows: Iterable[Workflow]) -> list[ScheduleEntry]:
    return [
        ScheduleEntry(workflow, index, trigger.schedule)
        for workflow in workflows
        for index, trigger in enumerate(workflow.triggers)
        if isinstance(trigger, ScheduleTrigger)
    ]


def cron_trigger(spec: ScheduleSpec) -> CronTrigger:
    return CronTrigger.from_crontab(spec.cron, timezone=spec.timezone)


def fire_times(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    """Fire times ``t`` with ``after < t <= until``, in UTC, oldest first."""
    result: list[datetime] = []
    for fire in _fires_from(spec, after + _STEP):
        if fire > until:
            break
        result.append(fire)
    return result


def next_fire_times(spec: ScheduleSpec, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``now``, in UTC."""
    result: list[datetime] = []
    for fire in _fires_from(spec, now + _STEP):
        if len(result) == count:
            break
        result.append(fire)
    return result


def latest_fire_time(spec: ScheduleSpec, now: datetime, window: float) -> datetime | None:
    """The most recent fire time at most ``window`` seconds before ``now`` (inclusive)."""
    recent = fire_times(spec, now - timedelta(seconds=window) - _STEP, now)
    return recent[-1] if recent else None


def dedupe_key(workflow: str, index: int, fire_time: datetime) -> str:
    return f"schedule:{workflow}:{index}:{fire_time.astimezone(UTC).isoformat()}"


async def start_fire(
    store: Store, entry: ScheduleEntry, fire_time: datetime, now: datetime
) -> Started:
    """Start the run of one fire; a second call (any process) returns the first's run."""
    local = fire_time.astimezone(ZoneInfo(entry.spec.timezone))
    request = StartRequest(
        workflow=entry.workflow,
        source="schedule",
        dedupe_key=dedupe_key(entry.workflow.name, entry.index, fire_time),
        input={
            "schedule": {
                "fire_time": fire_time.astimezone(UTC).isoformat(),
                "local_time": local.isoformat(),
                "cron": entry.spec.cron,
                "timezone": entry.spec.timezone,
            }
        },
    )
    return await start_run(store, request, now)


def _fires_from(spec: ScheduleSpec, start: datetime) -> Iterator[datetime]:
    """Fire times at or after ``start``, in UTC, without the repeated-hour duplicates."""
    trigger = cron_trigger(spec)
    zone = ZoneInfo(spec.timezone)
    fixed_hours = not str(trigger.fields[_HOUR_FIELD]).startswith("*")
    cursor = start.astimezone(UTC)
    while True:
        # Always search from a UTC instant: arithmetic on a local time across a DST fold is
        # wall-clock arithmetic and can step back an hour.
        fire = trigger.get_next_fire_time(None, cursor)
        if fire is None:
            return
        fire_utc = fire.astimezone(UTC)
        cursor = fire_utc + _STEP
        if fixed_hours and _second_occurrence(fire_utc.astimezone(zone)):
            continue
        yield fire_utc


def _second_occurrence(local: datetime) -> bool:
    """Whether ``local`` is the repeat of a wall-clock time (clocks went back)."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
