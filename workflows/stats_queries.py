"""The reads behind ``workflows.stats``: one snapshot of a period's rows, nothing computed.

Every query filters on the runs requested in ``[start, end)`` (optionally of one
workflow, minus ``exclude``) and fetches only the columns the arithmetic needs. They
run in ``Store.read()``: a deferred snapshot that on SQLite neither waits for nor
holds the write lock, because ``/flow stats`` reads on Slack's ack path and must not
queue behind the workers' writes. Open approvals are counted in SQL and only the
oldest few are fetched, however many wait.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.lifecycle import ENDINGS, LIVE
from workflows.store import Store
from workflows.tables import AssignmentRow, DecisionRow, GateRow, JobRow, RunRow

FINISHED = ENDINGS
"""Every final status: succeeded, failed, rejected, cancelled, timed_out."""


class PeriodRun(NamedTuple):
    id: str
    workflow: str
    status: str
    created_at: datetime
    finished_at: datetime | None


class PeriodJob(NamedTuple):
    """One finished step attempt of a run in the period."""

    workflow: str
    step_id: str
    started_at: datetime
    finished_at: datetime


class OpenGate(NamedTuple):
    run_id: str
    workflow: str
    step_id: str
    approvers: list[str]
    created_at: datetime


@dataclass(frozen=True)
class PeriodRows:
    runs: list[PeriodRun]
    gates: list[tuple[str, datetime, datetime | None]]
    """(run, opened, decided) of every approval gate of the period's runs."""
    decisions: list[tuple[str, datetime, datetime]]
    """(approver, gate opened, decided)."""
    owner_kinds: list[str]
    """The owner kind of each acted-on assignment (AI shadow assignments left out)."""
    jobs: list[PeriodJob]
    pending: list[OpenGate]
    """The oldest open approvals (of any period), at most the ``pending`` asked for."""
    pending_total: int


async def read_period(
    store: Store,
    *,
    start: datetime,
    end: datetime,
    workflow: str | None,
    exclude: Collection[str],
    pending: int,
) -> PeriodRows:
    """The rows of the runs requested in ``[start, end)``, read in one snapshot."""
    runs_query = select(RunRow.id).where(RunRow.created_at >= start, RunRow.created_at < end)
    in_period = _of_workflows(runs_query, workflow, exclude).scalar_subquery()
    async with store.read() as session:
        runs = [PeriodRun(*row) for row in await session.execute(_runs_query(in_period))]
        gates = await session.execute(
            select(GateRow.run_id, GateRow.created_at, GateRow.decided_at).where(
                GateRow.run_id.in_(in_period)
            )
        )
        decisions = await session.execute(
            select(DecisionRow.user_id, GateRow.created_at, DecisionRow.created_at)
            .join(GateRow, GateRow.id == DecisionRow.gate_id)
            .where(GateRow.run_id.in_(in_period))
        )
        owner_kinds = await session.scalars(
            select(AssignmentRow.owner_kind).where(
                AssignmentRow.run_id.in_(in_period), AssignmentRow.status != "shadow"
            )
        )
        jobs = await session.execute(_jobs_query(in_period))
        open_gates, open_total = await _open_gates(session, workflow, exclude, pending)
    return PeriodRows(
        runs=runs,
        gates=[(g[0], g[1], g[2]) for g in gates],
        decisions=[(d[0], d[1], d[2]) for d in decisions],
        owner_kinds=list(owner_kinds),
        jobs=[PeriodJob(*row) for row in jobs],
        pending=open_gates,
        pending_total=open_total,
    )


def _of_workflows(
    query: Select[Any], workflow: str | None, exclude: Collection[str]
) -> Select[Any]:
    """``query`` (which selects from runs) narrowed to one workflow and without ``exclude``."""
    if workflow is not None:
        query = query.where(RunRow.workflow == workflow)
    if exclude:
        query = query.where(RunRow.workflow.not_in(list(exclude)))
    return query


def _runs_query(in_period: ScalarSelect[Any]) -> Select[Any]:
    return select(
        RunRow.id, RunRow.workflow, RunRow.status, RunRow.created_at, RunRow.finished_at
    ).where(RunRow.id.in_(in_period))


def _jobs_query(in_period: ScalarSelect[Any]) -> Select[Any]:
    return (
        select(RunRow.workflow, JobRow.step_id, JobRow.started_at, JobRow.finished_at)
        .join(RunRow, RunRow.id == JobRow.run_id)
        .where(
            JobRow.run_id.in_(in_period),
            JobRow.started_at.is_not(None),
            JobRow.finished_at.is_not(None),
        )
    )


async def _open_gates(
    session: AsyncSession, workflow: str | None, exclude: Collection[str], shown: int
) -> tuple[list[OpenGate], int]:
    """The ``shown`` oldest open approvals of live runs and how many are open in all."""
    open_gates = _of_workflows(
        select(GateRow.run_id)
        .join(RunRow, RunRow.id == GateRow.run_id)
        .where(GateRow.status == "open", RunRow.status.in_(LIVE)),
        workflow,
        exclude,
    )
    total = await session.scalar(select(func.count()).select_from(open_gates.subquery()))
    oldest = await session.execute(
        open_gates.with_only_columns(
            GateRow.run_id, RunRow.workflow, GateRow.step_id, GateRow.approvers, GateRow.created_at
        )
        .order_by(GateRow.created_at)
        .limit(shown)
    )
    gates = [OpenGate(r[0], r[1], r[2], list(r[3] or []), r[4]) for r in oldest]
    return gates, int(total or 0)
