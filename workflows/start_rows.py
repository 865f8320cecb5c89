"""The rows a start writes: the request, its run, the first job and ``run.started``.

Plain column values per table (``workflows/row_inserts.py`` writes them without the
ORM); ``as_models`` makes the same rows ORM objects for sessions that want those.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table

from workflows import audit
from workflows.row_inserts import Rows
from workflows.tables import AuditRow, JobRow, RequestRow, RunRow
from workflows.versions import digest_of

if TYPE_CHECKING:  # workflows/runs.py imports this module
    from workflows.runs import StartRequest

_MODELS: dict[Any, Any] = {
    model.__table__: model for model in (RequestRow, RunRow, JobRow, AuditRow)
}
_TABLES: dict[str, Table] = {table.name: table for table in _MODELS}


def start_values(run_id: str, request: StartRequest, now: datetime, source: dict[str, Any]) -> Rows:
    """The request, its run, the first job and ``run.started``: column values per table."""
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
    return {
        _TABLES["requests"]: [request_row],
        _TABLES["runs"]: [run],
        _TABLES["jobs"]: [job],
        _TABLES["audit_records"]: [started],
    }


def as_models(values: Rows) -> list[Any]:
    """The same rows as ORM objects."""
    return [_MODELS[table](**row) for table, rows in values.items() for row in rows]
