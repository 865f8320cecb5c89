"""How the team's workflows are doing over a period: a few queries, then plain arithmetic.

``collect`` reads the runs *requested* in ``[start, end)`` (optionally of one
workflow) with their approval gates, decisions, assignments and jobs, in one
read transaction, and computes:

- volume, by workflow and by outcome (the run's status now);
- cycle time p50/p90 of the runs that have finished (request -> end);
- time waiting on people (approval gates, opened -> decided, or -> now/run end
  while open) versus machines (the rest of each finished run's cycle);
- exception rate: failed runs / finished runs;
- triage share: assignments routed to a triage owner / all assignments
  (AI shadow-mode assignments excluded: nobody acted on them);
- each approver's response time (gate opened -> their decision), median;
- the bottleneck steps: most total job time (a job = one step attempt);
- per UTC day: volume and median cycle time (the digest's chart);
- approvals pending now, oldest first, with whom they wait on.

Percentiles interpolate linearly between ranks (numpy's default). Everything
is computed in Python so SQLite and PostgreSQL give the same numbers; the
queries only filter, using the ``runs.created_at`` window.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from workflows.stats_queries import FINISHED, PeriodRows, PeriodRun, read_period
from workflows.store import Store

MAX_PERIOD = timedelta(days=366)
PENDING_SHOWN = 10
BOTTLENECKS_SHOWN = 5

_PERIOD = re.compile(r"^(\d{1,4})\s*([hdw])$")
_NAMED_PERIODS = {"day": timedelta(days=1), "week": timedelta(weeks=1), "month": timedelta(days=30)}


class PeriodError(ValueError):
    """A period that is not ``<n>h``, ``<n>d``, ``<n>w``, day, week or month (max a year)."""


def parse_period(text: str) -> timedelta:
    """``7d``, ``24h``, ``2w``, ``day``, ``week``, ``month`` -> a duration."""
    value = text.strip().lower()
    if value in _NAMED_PERIODS:
        return _NAMED_PERIODS[value]
    match = _PERIOD.match(value)
    if match is None:
        raise PeriodError(f"period {text!r}: use e.g. 24h, 7d, 2w, day, week or month")
    amount, unit = int(match[1]), match[2]
    period = (
        timedelta(hours=amount)
        if unit == "h"
        else timedelta(days=amount * (7 if unit == "w" else 1))
    )
    if not timedelta(0) < period <= MAX_PERIOD:
        raise PeriodError(f"period {text!r}: between 1h and 366d")
    return period


def is_period(text: str) -> bool:
    try:
        parse_period(text)
    except PeriodError:
        return False
    return True


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ApproverStats:
    user_id: str
    decisions: int
    median_seconds: float


@dataclass(frozen=True)
class StepStats:
    workflow: str
    step_id: str
    jobs: int
    total_seconds: float
    p90_seconds: float


@dataclass(frozen=True)
class DayStats:
    day: date
    volume: int
    median_cycle_seconds: float | None


@dataclass(frozen=True)
class PendingApproval:
    run_id: str
    workflow: str
    step_id: str
    approvers: list[str]
    waiting_seconds: float


@dataclass(frozen=True)
class Stats:
    start: datetime
    end: datetime
    workflow: str | None
    volume: int = 0
    by_workflow: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    by_workflow_outcome: dict[str, dict[str, int]] = field(default_factory=dict)
    finished: int = 0
    cycle_p50: float | None = None
    cycle_p90: float | None = None
    people_seconds: float = 0.0
    machine_seconds: float = 0.0
    exception_rate: float | None = None
    assignments: int = 0
    triage_share: float | None = None
    approvers: list[ApproverStats] = field(default_factory=list)
    bottlenecks: list[StepStats] = field(default_factory=list)
    days: list[DayStats] = field(default_factory=list)
    pending: list[PendingApproval] = field(default_factory=list)
    pending_total: int = 0

    @property
    def failures(self) -> int:
        return self.outcomes.get("failed", 0)

    @property
    def rejections(self) -> int:
        """Runs an approval ended ``rejected``: outcomes, not failures, and not successes."""
        return self.outcomes.get("rejected", 0)

    @property
    def people_share(self) -> float | None:
        total = self.people_seconds + self.machine_seconds
        return self.people_seconds / total if total > 0 else None

    @property
    def empty(self) -> bool:
        """Nothing requested in the period and nothing waiting: "nothing to report"."""
        return self.volume == 0 and self.pending_total == 0


async def collect(
    store: Store,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    workflow: str | None = None,
    exclude: Collection[str] = (),
) -> Stats:
    """Statistics of the runs requested in ``[start, end)``; ``exclude`` drops workflows."""
    rows = await read_period(
        store, start=start, end=end, workflow=workflow, exclude=exclude, pending=PENDING_SHOWN
    )
    return _aggregate(rows, start=start, end=end, now=now, workflow=workflow)


def _aggregate(
    rows: PeriodRows, *, start: datetime, end: datetime, now: datetime, workflow: str | None
) -> Stats:
    runs = rows.runs
    people = _people_seconds(runs, rows.gates, now)
    cycles = {r.id: _seconds(r.created_at, r.finished_at) for r in runs if r.finished_at}
    finished = [r for r in runs if r.status in FINISHED and r.finished_at is not None]
    cycle_values = [cycles[r.id] for r in finished]
    people_total = sum(min(people.get(r.id, 0.0), cycles[r.id]) for r in finished)
    outcomes = Counter(r.status for r in runs)
    kinds = Counter(rows.owner_kinds)
    return Stats(
        start=start,
        end=end,
        workflow=workflow,
        volume=len(runs),
        by_workflow=dict(Counter(r.workflow for r in runs).most_common()),
        outcomes=dict(outcomes.most_common()),
        by_workflow_outcome=_by_workflow_outcome(runs),
        finished=len(finished),
        cycle_p50=percentile(cycle_values, 50),
        cycle_p90=percentile(cycle_values, 90),
        people_seconds=people_total,
        machine_seconds=sum(cycle_values) - people_total,
        exception_rate=outcomes["failed"] / len(finished) if finished else None,
        assignments=len(rows.owner_kinds),
        triage_share=kinds["triage"] / len(rows.owner_kinds) if rows.owner_kinds else None,
        approvers=_approvers(rows.decisions),
        bottlenecks=_bottlenecks(
            [(j.workflow, j.step_id, _seconds(j.started_at, j.finished_at)) for j in rows.jobs]
        ),
        days=_days(start, end, runs, cycles),
        pending=[
            PendingApproval(
                run_id=p.run_id,
                workflow=p.workflow,
                step_id=p.step_id,
                approvers=p.approvers,
                waiting_seconds=_seconds(p.created_at, now),
            )
            for p in rows.pending
        ],
        pending_total=rows.pending_total,
    )


def _by_workflow_outcome(runs: list[PeriodRun]) -> dict[str, dict[str, int]]:
    """Per workflow, its runs' counts by status, finished outcomes first."""
    by_workflow: dict[str, dict[str, int]] = defaultdict(dict)
    pairs = Counter((r.workflow, r.status) for r in runs)
    for name, status in sorted(pairs, key=lambda pair: (pair[0], _status_rank(pair[1]))):
        by_workflow[name][status] = pairs[(name, status)]
    return dict(by_workflow)


def _status_rank(status: str) -> tuple[int, str]:
    """Finished outcomes first, in a fixed order; then whatever else, by name."""
    order = (*FINISHED, "running", "waiting")
    return (order.index(status), "") if status in order else (len(order), status)


def _seconds(start: datetime, end: datetime | None) -> float:
    return max((end - start).total_seconds(), 0.0) if end is not None else 0.0


def _people_seconds(
    runs: list[PeriodRun], gates: list[tuple[str, datetime, datetime | None]], now: datetime
) -> dict[str, float]:
    """Per run: seconds its approval gates were open (up to the run's end while undecided)."""
    ends = {r.id: r.finished_at or now for r in runs}
    waited: dict[str, float] = defaultdict(float)
    for run_id, opened, decided in gates:
        waited[run_id] += _seconds(opened, min(decided or ends[run_id], ends[run_id]))
    return waited


def _approvers(decisions: list[tuple[str, datetime, datetime]]) -> list[ApproverStats]:
    """(user, gate opened, decided) -> each approver's median response, slowest first."""
    times: dict[str, list[float]] = defaultdict(list)
    for user, opened, decided in decisions:
        times[user].append(_seconds(opened, decided))
    rows = [
        ApproverStats(user, len(values), statistics.median(values))
        for user, values in times.items()
    ]
    return sorted(rows, key=lambda a: (-a.median_seconds, a.user_id))


def _bottlenecks(jobs: list[tuple[str, str, float]]) -> list[StepStats]:
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for workflow, step_id, seconds in jobs:
        durations[(workflow, step_id)].append(seconds)
    rows = [
        StepStats(workflow, step_id, len(values), sum(values), percentile(values, 90) or 0.0)
        for (workflow, step_id), values in durations.items()
    ]
    rows.sort(key=lambda s: (-s.total_seconds, s.workflow, s.step_id))
    return rows[:BOTTLENECKS_SHOWN]


def _days(
    start: datetime, end: datetime, runs: list[PeriodRun], cycles: dict[str, float]
) -> list[DayStats]:
    """Each UTC day touching the period, with its requests and their median cycle time."""
    by_day: dict[date, list[PeriodRun]] = defaultdict(list)
    for run in runs:
        by_day[run.created_at.date()].append(run)
    days: list[DayStats] = []
    day = start.date()
    last = (end - timedelta(microseconds=1)).date()
    while day <= last:
        todays = by_day.get(day, [])
        finished = [cycles[r.id] for r in todays if r.id in cycles]
        days.append(DayStats(day, len(todays), percentile(finished, 50)))
        day += timedelta(days=1)
    return days


def human_duration(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h 20m``, ``2d 4h``; an en dash for no value."""
    if seconds is None:
        return "–"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 3600:
        return f"{minutes}m"
    if total < 86400:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{days}d {hours % 24}h" if hours % 24 else f"{days}d"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def summary(stats: Stats) -> dict[str, Any]:
    """The numbers as display strings, for templates (/flow stats, digests) and the CLI."""
    return {
        "start": f"{stats.start:%Y-%m-%d %H:%M}",
        "end": f"{stats.end:%Y-%m-%d %H:%M}",
        "workflow": stats.workflow,
        "volume": stats.volume,
        "finished": stats.finished,
        "failures": stats.failures,
        "rejections": stats.rejections,
        "outcomes": [{"status": s, "count": n} for s, n in stats.outcomes.items()],
        "workflows": [
            {
                "name": name,
                "total": stats.by_workflow[name],
                "outcomes": " · ".join(f"{n} {s}" for s, n in outcomes.items()),
            }
            for name, outcomes in stats.by_workflow_outcome.items()
        ],
        "cycle_p50": human_duration(stats.cycle_p50),
        "cycle_p90": human_duration(stats.cycle_p90),
        "people": human_duration(stats.people_seconds),
        "machines": human_duration(stats.machine_seconds),
        "people_share": _share(stats.people_share),
        "exception_rate": _share(stats.exception_rate),
        "assignments": stats.assignments,
        "triage_share": _share(stats.triage_share),
        "approvers": [
            {
                "user": a.user_id,
                "decisions": a.decisions,
                "median": human_duration(a.median_seconds),
            }
            for a in stats.approvers
        ],
        "bottlenecks": [
            {
                "workflow": s.workflow,
                "step": s.step_id,
                "jobs": s.jobs,
                "total": human_duration(s.total_seconds),
                "p90": human_duration(s.p90_seconds),
            }
            for s in stats.bottlenecks
        ],
        "pending": [
            {
                "run_id": p.run_id,
                "workflow": p.workflow,
                "step": p.step_id,
                "approvers": p.approvers,
                "waiting": human_duration(p.waiting_seconds),
            }
            for p in stats.pending
        ],
        "pending_total": stats.pending_total,
        "pending_more": stats.pending_total - len(stats.pending),
    }
