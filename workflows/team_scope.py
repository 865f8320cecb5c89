"""Who is asking decides what exists: every ORM read of a scoped task sees one workspace.

A Slack request (``bot/team_tokens.workspace_scope``) and a console request
(``bot/console/app.py``) set ``READ_SCOPE`` to the asker's workspace for everything they
do, including the background work they spawn. While it is set, every ORM statement any
session runs (``SELECT``, ``session.get``, ORM ``UPDATE``/``DELETE``) carries a criterion
added here, in ONE ``do_orm_execute`` hook: runs and requests of that workspace only, and
gates, decisions and assignments of those runs only. A run, gate or assignment of another
workspace is therefore "not found" for status, approvals, cancel, retry, route, clicks,
App Home and the console, with no check in any of them to forget.

Runs without a workspace (a webhook's, a schedule's) stay visible where ``unassigned``
is true: one workspace installed with ``SLACK_BOT_TOKEN``, where they always were. The
engine's jobs set no scope (a run's job acts on its own rows). Core statements (``text``,
``insert``, the start path's raw inserts) are not filtered: none of them reads for a
person.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, event, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from workflows.tables import AssignmentRow, DecisionRow, GateRow, RequestRow, RunRow


@dataclass(frozen=True)
class TeamScope:
    team_id: str
    enterprise_id: str | None = None
    unassigned: bool = False
    """Also runs that belong to no workspace (single-workspace mode)."""


READ_SCOPE: ContextVar[TeamScope | None] = ContextVar("read_scope", default=None)


def _team(column: Any, scope: TeamScope) -> ColumnElement[bool]:
    mine = column == scope.team_id
    return or_(mine, column.is_(None)) if scope.unassigned else mine


def _options(scope: TeamScope) -> list[Any]:
    runs = select(RunRow.id).where(_team(RunRow.team_id, scope)).scalar_subquery()
    gates = select(GateRow.id).where(GateRow.run_id.in_(runs)).scalar_subquery()
    return [
        with_loader_criteria(RunRow, _team(RunRow.team_id, scope), include_aliases=True),
        with_loader_criteria(RequestRow, _team(RequestRow.team_id, scope), include_aliases=True),
        with_loader_criteria(GateRow, GateRow.run_id.in_(runs), include_aliases=True),
        with_loader_criteria(AssignmentRow, AssignmentRow.run_id.in_(runs), include_aliases=True),
        with_loader_criteria(DecisionRow, DecisionRow.gate_id.in_(gates), include_aliases=True),
    ]


@event.listens_for(Session, "do_orm_execute")
def _scoped(state: ORMExecuteState) -> None:
    scope = READ_SCOPE.get()
    if scope is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(*_options(scope))
