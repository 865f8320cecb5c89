"""What a start asks for (``StartRequest``) and the rows it writes: the request, its run,
the first job and ``run.started``.

Plain column values per table (``workflows/row_inserts.py`` writes them without the
ORM); ``as_models`` makes the same rows ORM objects for sessions that want those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry import trace
from sqlalchemy import Table

from workflows import audit
from workflows.language.workflow import Workflow
from workflows.row_inserts import Rows
from workflows.tables import AuditRow, FunctionRunRow, JobRow, RequestRow, RunRow
from workflows.tracing import RUN_ID
from workflows.versions import digest_of


@dataclass(frozen=True)
class StartRequest:
    workflow: Workflow
    source: str
    text: str = ""
    user_id: str | None = None
    channel_id: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None
    dedupe_key: str | None = None
    input: dict[str, Any] | None = None
    thread_ts: str | None = None
    """Thread the run under this existing message (an intake message) instead of a new root."""
    trigger_id: str | None = None
    """Slack's id of the command or shortcut use that asked for the run (audited)."""
    function: FunctionExecution | None = None
    """The Workflow Builder step that asked for the run: recorded with it (``function_runs``)."""


@dataclass(frozen=True)
class FunctionExecution:
    """A ``function_executed`` event's execution: its id, step and short-lived token."""

    execution_id: str
    callback_id: str
    token: str | None


_MODELS: dict[Any, Any] = {
    model.__table__: model for model in (RequestRow, RunRow, JobRow, AuditRow, FunctionRunRow)
}
_TABLES: dict[str, Table] = {table.name: table for table in _MODELS}


def start_values(run_id: str, request: StartRequest, now: datetime, source: dict[str, Any]) -> Rows:
    """The request, its run, the first job and ``run.started``: column values per table."""
    trace.get_current_span().set_attribute(RUN_ID, run_id)  # the ack's span names its run
    inputs = {"text": request.text, "user": request.user_id, "channel": request.channel_id}
    inputs |= request.input or {}
    first_step = request.workflow.steps[0].id
    request_row = {
        "id": run_id,
        "source": request.source,
        "dedupe_key": request.dedupe_key,
        "team_id": request.team_id,
        "channel_id": request.channel_id,
        "user_id": request.user_id,
        "text": request.text,
        "received_at": now,
    }
    run = {
        "id": run_id,
        "workflow": request.workflow.name,
        "status": "running",
        "request_id": run_id,
        "requester": request.user_id,
        "team_id": request.team_id,
        "enterprise_id": request.enterprise_id,
        "channel_id": request.channel_id,
        "root_ts": request.thread_ts,
        "current_step": first_step,
        "context": {"input": inputs, "steps": {}, "source": request.source},
        "error": None,
        "version": 0,
        "workflow_version": digest_of(request.workflow),  # the run finishes on this one
        "created_at": now,
        "updated_at": now,
    }
    # What ``JobRow.queued`` sets (the test of the start path compares the rows).
    job: dict[str, Any] = {"run_id": run_id, "step_id": first_step, "kind": "step", "payload": {}}
    job |= {"status": "queued", "due_at": now, "attempt": 0, "failures": 0, "created_at": now}
    started = audit.record(
        run_id=run_id,
        step_id=None,
        actor=request.user_id or request.source,
        action="run.started",
        detail=source,
        now=now,
    )
    rows: Rows = {
        _TABLES["requests"]: [request_row],
        _TABLES["runs"]: [run],
        _TABLES["jobs"]: [job],
        _TABLES["audit_records"]: [started],
    }
    if request.function is not None:
        rows[_TABLES["function_runs"]] = [_function_row(run_id, request, now)]
    return rows


def _function_row(run_id: str, request: StartRequest, now: datetime) -> dict[str, Any]:
    function = request.function
    assert function is not None
    return {
        "execution_id": function.execution_id,
        "run_id": run_id,
        "callback_id": function.callback_id,
        "team_id": request.team_id,
        "token": function.token,
        "attempts": 0,
        "created_at": now,
    }


def as_models(values: Rows) -> list[Any]:
    """The same rows as ORM objects."""
    return [_MODELS[table](**row) for table, rows in values.items() for row in rows]
