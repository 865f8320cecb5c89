"""Retention and forgetting: finished runs lose their texts; the audit trail keeps its digests.

What goes, for a finished run past its cut-off (the workflow's ``retention.days``, else
the default): the request text, the run's context (inputs and step outputs) and error,
its jobs' payloads and errors, approval reasons typed on its gates, and the labelled
examples taken from it. Each becomes a dated marker (``[purged 2026-12-03]``) or, for
examples, is deleted. Outbound message rows hold no text (channel and ``ts`` only).

What stays: ids, statuses and times (stats still count the run), and every audit
record untouched. A record's hash covers its ``detail``, and details hold digests of
outputs and reasons, not the texts, so the chain verifies across a purge.

Purging is a guarded UPDATE (``purged_at IS NULL``) in batches, each batch audited in
its own transaction, so any number of processes may purge at once: each run is purged
and counted once. Runs still running or waiting are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit
from workflows.language.workflow import Workflow
from workflows.lifecycle import ENDINGS
from workflows.ports import Clock
from workflows.store import Store, is_database_outage
from workflows.tables import (
    AuditRow,
    DecisionRow,
    ExampleRow,
    GateRow,
    JobRow,
    RequestRow,
    RunRow,
)

log = logging.getLogger(__name__)

FINISHED = ENDINGS
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")
FORGOTTEN_NAME = "[forgotten]"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days a finished run keeps its texts: per workflow, else ``default_days`` (None: keep)."""

    default_days: int | None
    per_workflow: Mapping[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.default_days is not None or bool(self.per_workflow)

    def expired(self, now: datetime) -> ColumnElement[bool]:
        """SQL: the run finished before its workflow's cut-off."""
        clauses = [
            and_(RunRow.workflow == name, RunRow.finished_at < now - timedelta(days=days))
            for name, days in self.per_workflow.items()
        ]
        if self.default_days is not None:
            others = RunRow.workflow.not_in(list(self.per_workflow)) if self.per_workflow else None
            before = RunRow.finished_at < now - timedelta(days=self.default_days)
            clauses.append(before if others is None else and_(others, before))
        return or_(*clauses) if clauses else false()


def policy_for(workflows: Iterable[Workflow], default_days: int | None) -> RetentionPolicy:
    """The default plus each workflow's own ``retention`` (which wins for its runs)."""
    own = {wf.name: wf.retention.days for wf in workflows if wf.retention is not None}
    return RetentionPolicy(default_days, own)


@dataclass(frozen=True)
class PurgePlan:
    runs: int
    by_workflow: dict[str, int]


def marker(now: datetime, word: str = "purged") -> str:
    return f"[{word} {now.date().isoformat()}]"


def _candidates(policy: RetentionPolicy, now: datetime) -> ColumnElement[bool]:
    return and_(RunRow.status.in_(FINISHED), RunRow.purged_at.is_(None), policy.expired(now))


async def plan(store: Store, policy: RetentionPolicy, now: datetime) -> PurgePlan:
    """What ``purge`` would remove now (reads only)."""
    async with store.read() as session:
        rows = (
            await session.execute(
                select(RunRow.workflow, RunRow.id).where(_candidates(policy, now))
            )
        ).all()
    by_workflow: dict[str, int] = {}
    for name, _ in rows:
        by_workflow[name] = by_workflow.get(name, 0) + 1
    return PurgePlan(len(rows), dict(sorted(by_workflow.items())))


async def purge(
    store: Store, policy: RetentionPolicy, now: datetime, *, actor: str, batch: int = 500
) -> int:
    """Purge every expired finished run; returns how many this call purged."""
    total = 0
    while True:
        async with store.transaction() as session:
            ids = list(
                (
                    await session.scalars(
                        select(RunRow.id).where(_candidates(policy, now)).limit(batch)
                    )
                ).all()
            )
            purged = await _erase_runs(session, ids, now, marker(now)) if ids else []
            if purged:
                await audit.append(
                    session,
                    run_id=None,
                    step_id=None,
                    actor=actor,
                    action="retention.purge",
                    detail={
                        "runs": len(purged),
                        "default_days": policy.default_days,
                        "per_workflow": dict(policy.per_workflow),
                        "purged_at": now.isoformat(),
                    },
                    now=now,
                )
        total += len(purged)
        if len(ids) < batch:
            return total


async def purge_every(
    store: Store,
    workflows: Mapping[str, Workflow],
    default_days: int | None,
    clock: Clock,
    *,
    seconds: float = 3600,
    actor: str,
) -> None:
    """Purge now and every ``seconds``, for a process with workers but no scheduler
    (``switchboard worker``). The policy is read from ``workflows`` each time, so it follows
    reloads; concurrent purges elsewhere are safe (each run is purged once)."""
    while True:
        policy = policy_for(workflows.values(), default_days)
        try:
            if policy.active:
                await purge(store, policy, clock.now(), actor=actor)
        except Exception as exc:  # the next round retries; the loop outlives a bad moment
            if not is_database_outage(exc):
                log.exception("retention purge failed")
            else:
                log.warning("retention purge postponed: database unreachable")
        await asyncio.sleep(seconds)


async def _erase_runs(
    session: AsyncSession, ids: Sequence[str], now: datetime, mark: str
) -> list[str]:
    """Replace the texts of the runs ``ids`` not yet purged; returns the ones this call took."""
    taken = list(
        (
            await session.execute(
                update(RunRow)
                .where(RunRow.id.in_(ids), RunRow.purged_at.is_(None))
                .values(
                    context={"input": {}, "steps": {}, "purged": mark},
                    error=_marked(RunRow.error, mark),
                    purged_at=now,
                )
                .returning(RunRow.id, RunRow.request_id)
            )
        ).all()
    )
    run_ids = [run_id for run_id, _ in taken]
    if not run_ids:
        return []
    requests = [request_id for _, request_id in taken if request_id]
    await session.execute(update(RequestRow).where(RequestRow.id.in_(requests)).values(text=mark))
    await session.execute(
        update(JobRow)
        .where(JobRow.run_id.in_(run_ids))
        .values(payload={}, error=_marked(JobRow.error, mark))
    )
    gates = select(GateRow.id).where(GateRow.run_id.in_(run_ids)).scalar_subquery()
    await session.execute(
        update(GateRow)
        .where(GateRow.run_id.in_(run_ids))
        .values(reason=_marked(GateRow.reason, mark))
    )
    await session.execute(
        update(DecisionRow)
        .where(DecisionRow.gate_id.in_(gates))
        .values(reason=_marked(DecisionRow.reason, mark))
    )
    await session.execute(delete(ExampleRow).where(ExampleRow.run_id.in_(run_ids)))
    return run_ids


def _marked(column: Any, mark: str) -> Any:
    """SQL: NULL stays NULL (nothing was there); any text becomes the marker."""
    return case((column.is_(None), None), else_=mark)


@dataclass(frozen=True)
class Forgotten:
    """What ``forget_user`` removed, and what it kept (the caller says why)."""

    requests: int
    runs: list[str]
    mentions: int
    reasons: int
    examples: int
    active: list[str]
    audit_records: int


async def forget_user(store: Store, user_id: str, now: datetime, *, actor: str) -> Forgotten:
    """Remove ``user_id``'s request texts and their name from finished runs, in one transaction.

    Their own finished runs are erased like a purge; other finished runs that name them
    have the id replaced. Runs still active are left whole (erasing a waiting run's
    context would break it) and reported. Audit records are kept: the chain covers them.
    """
    if not USER_ID.match(user_id):
        raise ValueError(f"not a Slack user id: {user_id!r} (like U012AB3CD)")
    mark = marker(now, "forgotten")
    async with store.transaction() as session:
        own = (
            await session.execute(
                select(RunRow.id, RunRow.status).where(RunRow.requester == user_id)
            )
        ).all()
        active = sorted(run_id for run_id, status in own if status not in FINISHED)
        finished = sorted(run_id for run_id, status in own if status in FINISHED)
        await _erase_runs(session, finished, now, mark)
        requests = await session.execute(
            update(RequestRow)
            .where(RequestRow.user_id == user_id, RequestRow.id.not_in(active))
            .values(text=mark)
        )
        mentions = await _unname(session, user_id, exclude=[run_id for run_id, _ in own])
        reasons = await _erase_reasons(session, user_id, mark)
        examples = await session.execute(
            delete(ExampleRow).where(
                or_(ExampleRow.created_by == user_id, ExampleRow.run_id.in_(finished))
            )
        )
        kept = await session.scalar(
            select(func.count())
            .select_from(AuditRow)
            .where(or_(AuditRow.actor == user_id, AuditRow.run_id.in_([r for r, _ in own])))
        )
        result = Forgotten(
            requests=requests.rowcount,  # type: ignore[attr-defined]
            runs=finished,
            mentions=mentions,
            reasons=reasons,
            examples=examples.rowcount,  # type: ignore[attr-defined]
            active=active,
            audit_records=kept or 0,
        )
        await audit.append(
            session,
            run_id=None,
            step_id=None,
            actor=actor,
            action="retention.forget",
            # The digest, not the id: the trail must not name the person it forgot.
            detail={
                "user": audit.digest(user_id),
                "runs": len(finished),
                "kept_active": len(active),
            },
            now=now,
        )
    return result


async def _erase_reasons(session: AsyncSession, user_id: str, mark: str) -> int:
    """Replace the reasons ``user_id`` gave for decisions; the number of decisions changed."""
    reasons = await session.execute(
        update(DecisionRow)
        .where(DecisionRow.user_id == user_id, DecisionRow.reason.is_not(None))
        .values(reason=mark)
    )
    await session.execute(
        update(GateRow)
        .where(GateRow.decided_by == user_id, GateRow.reason.is_not(None))
        .values(reason=mark)
    )
    return int(reasons.rowcount)  # type: ignore[attr-defined]


async def _unname(session: AsyncSession, user_id: str, *, exclude: list[str]) -> int:
    """Replace ``user_id`` in other finished runs' contexts, request texts and job payloads."""
    rows = (
        await session.scalars(
            select(RunRow).where(
                RunRow.status.in_(FINISHED),
                RunRow.id.not_in(exclude),
                cast(RunRow.context, String).contains(user_id),
            )
        )
    ).all()
    for run in rows:
        run.context = _replaced(run.context, user_id)
    ids = [run.id for run in rows]
    await session.execute(
        update(RequestRow)
        .where(RequestRow.id.in_(ids))
        .values(text=func.replace(RequestRow.text, user_id, FORGOTTEN_NAME))
    )
    # A finished run's jobs will not run again: their payloads (signals: who clicked, why) go.
    await session.execute(update(JobRow).where(JobRow.run_id.in_(ids)).values(payload={}))
    return len(rows)


def _replaced(value: Any, user_id: str) -> Any:
    if isinstance(value, str):
        return value.replace(user_id, FORGOTTEN_NAME)
    if isinstance(value, dict):
        return {key: _replaced(item, user_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, user_id) for item in value]
    return value
