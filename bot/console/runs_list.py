"""The console's list of runs: newest first, filtered, keyset-paginated, visible to the viewer.

Order is ``(created_at, id)`` descending; the cursor is the last row's pair, so a page
costs the same at the millionth run as at the first (the indexes of migration 0010 serve
each filter with that order). Who sees what follows the Slack rules: admins see every
run, others the runs they requested and those they were asked to decide on
(``workflows.inbox.may_see``), as a union of the two index paths. Reads go through ``Store.read()``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, literal, or_, select, tuple_, type_coerce, union
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import Select

from workflows.store import Store
from workflows.tables import GateRow, RequestRow, RunRow

PAGE = 50
MAX_PAGE = 200
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
FILTERS = ("workflow", "status", "requester", "trigger")


class BadQuery(ValueError):
    """A filter the console cannot use; the message is one line (400)."""


@dataclass(frozen=True)
class RunQuery:
    workflow: str = ""
    status: str = ""
    requester: str = ""
    trigger: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    cursor: tuple[datetime, str] | None = None
    limit: int = PAGE

    @classmethod
    def parse(cls, params: dict[str, str]) -> RunQuery:
        values: dict[str, Any] = {}
        for name in FILTERS:
            value = params.get(name, "").strip()
            if value and not _ID.match(value):
                raise BadQuery(f"{name}: not a valid value")
            values[name] = value
        values["since"] = _time(params.get("since", ""), "since")
        values["until"] = _time(params.get("until", ""), "until")
        values["text"] = params.get("q", "").strip()[:200]
        values["cursor"] = decode_cursor(params.get("cursor", ""))
        try:
            limit = int(params.get("limit", PAGE))
        except ValueError:
            raise BadQuery("limit: not a number") from None
        values["limit"] = max(1, min(limit, MAX_PAGE))
        return cls(**values)


def _time(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name}: not an ISO date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def encode_cursor(created_at: datetime, run_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{run_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str] | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _, run_id = raw.partition("|")
        when = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadQuery("cursor: not one this console gave") from None
    if not _ID.match(run_id) or when.tzinfo is None:
        raise BadQuery("cursor: not one this console gave")
    return when, run_id


def _asked(viewer: str, dialect: str) -> Any:
    """Ids of runs whose gates name ``viewer`` among the approvers. PostgreSQL: JSONB
    containment, served by the GIN index of migration 0012 (a LIKE over the list as text
    scanned every gate: 53 ms of 160 at a million runs); SQLite: the list as JSON text."""
    if dialect == "postgresql":
        wanted = cast(literal(json.dumps([viewer]), String), JSONB)
        return select(GateRow.run_id).where(type_coerce(GateRow.approvers, JSONB).contains(wanted))
    pattern = f'%"{_like_safe(viewer)}"%'
    return select(GateRow.run_id).where(cast(GateRow.approvers, String).like(pattern))


def _like_safe(value: str) -> str:
    """Slack user ids are letters and digits: nothing else reaches the LIKE pattern."""
    return re.sub(r"[^A-Za-z0-9]", "", value)


def _filtered(query: RunQuery) -> Select[Any]:
    statement = select(
        RunRow.id,
        RunRow.workflow,
        RunRow.status,
        RunRow.requester,
        RunRow.current_step,
        RunRow.created_at,
        RunRow.finished_at,
        RequestRow.source,
        RequestRow.text,
    ).outerjoin(RequestRow, RequestRow.id == RunRow.request_id)
    for name in ("workflow", "status", "requester"):
        if getattr(query, name):
            statement = statement.where(getattr(RunRow, name) == getattr(query, name))
    if query.trigger:
        statement = statement.where(RequestRow.source == query.trigger)
    if query.since is not None:
        statement = statement.where(RunRow.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(RunRow.created_at < query.until)
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = RequestRow.text.like(pattern + "%", escape="\\")
        statement = statement.where(or_(RunRow.id == query.text, matches))
    if query.cursor is not None:
        statement = statement.where(tuple_(RunRow.created_at, RunRow.id) < query.cursor)
    return statement


def list_statement(query: RunQuery, viewer: str, admin: bool, dialect: str) -> Select[Any]:
    """Admins: one index range scan. Others: the union of two, each newest first and cut to
    a page: the runs they requested (``ix_runs_requester_newest``) and the runs whose gates
    name them (an ``OR`` of the two would walk the newest runs probing each)."""
    newest = (RunRow.created_at.desc(), RunRow.id.desc())
    page = query.limit + 1
    if admin:
        return _filtered(query).order_by(*newest).limit(page)
    own = _filtered(query).where(RunRow.requester == viewer).order_by(*newest).limit(page)
    asked = (
        _filtered(query).where(RunRow.id.in_(_asked(viewer, dialect))).order_by(*newest).limit(page)
    )
    both = union(select(own.subquery()), select(asked.subquery())).subquery()
    return select(both).order_by(both.c.created_at.desc(), both.c.id.desc()).limit(page)


async def list_runs(store: Store, query: RunQuery, viewer: str, admin: bool) -> dict[str, Any]:
    async with store.read() as session:
        statement = list_statement(query, viewer, admin, store.engine.dialect.name)
        rows = (await session.execute(statement)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    runs = [
        {
            "id": row.id,
            "workflow": row.workflow,
            "status": row.status,
            "requester": row.requester,
            "step": row.current_step,
            "trigger": row.source,
            "text": (row.text or "")[:160],
            "created_at": row.created_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        }
        for row in rows
    ]
    last = rows[-1] if rows and more else None
    return {"runs": runs, "next": encode_cursor(last.created_at, last.id) if last else None}
