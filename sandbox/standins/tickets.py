"""The ticketing stand-in's reads and updates in Jira's shapes: search by label, comments
(with their ``properties``), transitions. Creating issues is in ``systems.py``."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from typing import Any

from starlette.requests import Request

JSON = dict[str, Any]

# status -> the transitions out of it: (id, name, target status)
TRANSITIONS: dict[str, list[tuple[str, str, str]]] = {
    "To Do": [("11", "Start progress", "In Progress"), ("31", "Done", "Done")],
    "In Progress": [("21", "Stop progress", "To Do"), ("31", "Done", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
_LABEL_JQL = re.compile(r'^\s*labels\s*=\s*"?([A-Za-z0-9_.-]+)"?\s*(ORDER BY created ASC)?\s*$')


class ApiError(Exception):
    """A refusal with its HTTP status (every stand-in handler raises it; ``api.py`` answers)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _ticket(db: sqlite3.Connection, key: str) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute("select * from tickets where key = ?", (key,)).fetchone()
    if row is None:
        raise ApiError(404, f"Issue does not exist: {key}")
    return row


def search(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    """``GET /rest/api/2/search?jql=labels = "x"``: the one JQL form the stand-in knows."""
    match = _LABEL_JQL.match(request.query_params.get("jql", ""))
    if match is None:
        raise ApiError(400, 'the stand-in understands only jql=labels = "<label>"')
    label = match.group(1)
    rows = db.execute("select * from tickets order by id").fetchall()
    found = [r for r in rows if label in json.loads(r["labels"])]
    limit = int(request.query_params.get("maxResults", "50") or 50)
    issues = [
        {"id": str(r["id"]), "key": r["key"], "fields": {"summary": r["summary"]}}
        for r in found[:limit]
    ]
    return 200, {"total": len(found), "maxResults": limit, "issues": issues}


def issue(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    ticket = _ticket(db, request.path_params["key"])
    fields = {
        "summary": ticket["summary"],
        "labels": json.loads(ticket["labels"]),
        "status": {"name": ticket["status"]},
    }
    return 200, {"id": str(ticket["id"]), "key": ticket["key"], "fields": fields}


def comments(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    ticket = _ticket(db, request.path_params["key"])
    rows = db.execute(
        "select * from ticket_comments where ticket = ? order by id", (ticket["key"],)
    ).fetchall()
    expand = "properties" in request.query_params.get("expand", "")
    listed = []
    for row in rows:
        comment: JSON = {"id": str(row["id"]), "body": row["body"]}
        if expand:
            comment["properties"] = json.loads(row["properties"])
        listed.append(comment)
    return 200, {"total": len(listed), "comments": listed}


def add_comment(db: sqlite3.Connection, request: Request, body: JSON) -> tuple[int, JSON]:
    ticket = _ticket(db, request.path_params["key"])
    text = body.get("body")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "body is required")
    properties = body.get("properties") or []
    if not isinstance(properties, list):
        raise ApiError(400, "properties must be a list")
    cursor = db.execute(
        "insert into ticket_comments (ticket, body, properties, created_at) values (?, ?, ?, ?)",
        (ticket["key"], text, json.dumps(properties), dt.datetime.now(dt.UTC).isoformat()),
    )
    return 201, {"id": str(cursor.lastrowid), "body": text}


def transitions(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    ticket = _ticket(db, request.path_params["key"])
    return 200, {
        "transitions": [
            {"id": tid, "name": name, "to": {"name": target}}
            for tid, name, target in TRANSITIONS.get(ticket["status"], [])
        ]
    }


def transition(db: sqlite3.Connection, request: Request, body: JSON) -> tuple[int, JSON]:
    """Apply a transition; one not available from the current status is a 400, as in Jira."""
    ticket = _ticket(db, request.path_params["key"])
    wanted = (
        body.get("transition", {}).get("id") if isinstance(body.get("transition"), dict) else None
    )
    for tid, _name, target in TRANSITIONS.get(ticket["status"], []):
        if tid == str(wanted):
            db.execute("update tickets set status = ? where key = ?", (target, ticket["key"]))
            return 200, {}  # Jira answers 204; an empty JSON object is as good here
    raise ApiError(400, f"Transition id {wanted!r} is not valid for this issue")
