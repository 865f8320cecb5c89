"""The console's run page assembly, workflows catalogue and health numbers.

The run page names the definition version the run is pinned to (``runs.workflow_version``,
read through ``WorkflowVersions.for_run``, the engine's own look-up) and whether it is the
live one, and links its Slack thread (``chat.getPermalink``, once per thread). Health shows
what ``/metrics`` has, for people: the database gauges are sampled the same way
(``Metrics.refresh_from_db``), breaker states come from the same registry, and workers
are the lease owners of running jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.run_view import run_summary, step_plan
from bot.metric_series import PREFIX
from bot.runtime import Runtime
from workflows.language.triggers import ScheduleTrigger, WebhookTrigger, trigger_kind
from workflows.language.workflow import Workflow
from workflows.schedules import next_fire_times
from workflows.tables import JobRow, RunRow
from workflows.versions import VersionUnavailable, digest_of

RECENT_DAYS = 7


class Permalinks:
    """Slack's link to a run's thread (``chat.getPermalink``), asked once per thread."""

    def __init__(self, client: AsyncWebClient, size: int = 2000) -> None:
        self._client = client
        self._known: dict[tuple[str, str], str] = {}
        self._size = size

    async def of(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        known = self._known.get((channel, ts))
        if known is not None:
            return known
        try:
            answer = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, OSError, TimeoutError):
            return None  # the page works without the link; the next view asks again
        link = str(answer.get("permalink") or "")
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[(channel, ts)] = link
        return link or None


async def run_page(
    runtime: Runtime, found: dict[str, Any], links: Permalinks | None = None
) -> dict[str, Any]:
    run = found["run"]
    workflow: Workflow | None
    try:
        workflow = await runtime.engine.registry.for_run(run.workflow, run.workflow_version)
        problem = None
    except VersionUnavailable as exc:
        workflow, problem = runtime.workflows.get(run.workflow), str(exc)
    live = runtime.workflows.get(run.workflow)
    return {
        "run": run_summary(run, found["request"]),
        "thread": await links.of(run.channel_id, run.root_ts) if links else None,
        "definition": {
            "version": run.workflow_version,
            "live": live is not None and digest_of(live) == run.workflow_version,
            "problem": problem,
        },
        "steps": step_plan(workflow, run, found["jobs"]),
        "approvals": found["gates"],
        "assignments": found["assignments"],
        "audit": found["audit"],
    }


def _trigger_views(workflow: Workflow, now: Any) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    for trigger in workflow.triggers:
        view: dict[str, Any] = {"kind": trigger_kind(trigger)}
        if isinstance(trigger, ScheduleTrigger):
            fires = next_fire_times(trigger.schedule, now, 3)
            view["next_fires"] = [fire.isoformat() for fire in fires]
        if isinstance(trigger, WebhookTrigger):
            view["webhook_path"] = f"/hooks/{workflow.name}"
        views.append(view)
    return views


async def catalogue(runtime: Runtime) -> dict[str, Any]:
    """Every live workflow: version, triggers, next fires, webhook path, recent outcomes and
    p50/p90 cycle times."""
    now = runtime.engine.clock.now()
    async with runtime.store.read() as session:
        rows = await session.execute(
            select(RunRow.workflow, RunRow.status, func.count())
            .where(RunRow.created_at >= now - timedelta(days=RECENT_DAYS))
            .group_by(RunRow.workflow, RunRow.status)
        )
        counts: dict[str, dict[str, int]] = {}
        for name, status, count in rows.all():
            counts.setdefault(name, {})[status] = int(count)
        cycles = await _cycle_times(session, now - timedelta(days=RECENT_DAYS))
    return {
        "days": RECENT_DAYS,
        "workflows": [
            {
                "name": workflow.name,
                "title": workflow.title,
                "version": digest_of(workflow),
                "steps": [{"id": s.id, "kind": s.KIND} for s in workflow.steps],
                "triggers": _trigger_views(workflow, now),
                "outcomes": counts.get(workflow.name, {}),
                "cycle_s": cycles.get(workflow.name),
            }
            for workflow in sorted(runtime.workflows.values(), key=lambda w: w.name)
        ],
    }


CYCLE_SAMPLE = 5000


async def _cycle_times(session: AsyncSession, since: datetime) -> dict[str, dict[str, float]]:
    """p50/p90 seconds from start to end of the newest finished runs (at most CYCLE_SAMPLE)."""
    rows = await session.execute(
        select(RunRow.workflow, RunRow.created_at, RunRow.finished_at)
        .where(RunRow.created_at >= since, RunRow.finished_at.is_not(None))
        .order_by(RunRow.created_at.desc())
        .limit(CYCLE_SAMPLE)
    )
    spans: dict[str, list[float]] = {}
    for name, created, finished in rows.all():
        spans.setdefault(name, []).append((finished - created).total_seconds())
    return {
        name: {"p50": _quantile(values, 0.5), "p90": _quantile(values, 0.9), "runs": len(values)}
        for name, values in spans.items()
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _gauge(runtime: Runtime, name: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(PREFIX + name)


def _breakers(runtime: Runtime) -> dict[str, str]:
    states: dict[str, str] = {}
    for family in runtime.metrics.registry.collect():
        if family.name == PREFIX + "connector_breaker_open":
            for sample in family.samples:
                states[sample.labels.get("connection", "?")] = "open" if sample.value else "closed"
    return states


async def health(runtime: Runtime) -> dict[str, Any]:
    now = runtime.engine.clock.now()
    await runtime.metrics.refresh_from_db(runtime.store, now)
    async with runtime.store.read() as session:
        leases = await session.execute(
            select(JobRow.lease_owner, func.count(), func.max(JobRow.lease_expires_at))
            .where(JobRow.status == "leased")
            .group_by(JobRow.lease_owner)
        )
        workers = [
            {"owner": owner, "jobs": int(count), "lease_expires_at": expires.isoformat()}
            for owner, count, expires in leases.all()
            if owner and expires is not None
        ]
    return {
        "database_up": _gauge(runtime, "database_up") == 1,
        "jobs_due": _gauge(runtime, "jobs_due"),
        "oldest_due_job_age_s": _gauge(runtime, "jobs_due_oldest_age_seconds"),
        "approvals_pending": _gauge(runtime, "approvals_pending"),
        "oldest_approval_age_s": _gauge(runtime, "approvals_pending_oldest_age_seconds"),
        "workers": workers,
        "breakers": _breakers(runtime),
    }
