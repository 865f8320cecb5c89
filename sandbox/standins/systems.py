"""What each stand-in system does with a request: one handler per endpoint, over SQLite.

A handler runs in a worker thread inside the request's transaction (``api.py``
opens and commits it) and returns ``(status, body)``; a ``_mail`` entry in the
body is an e-mail to send after the commit. :data:`ENDPOINTS` is the routing table.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from typing import Any, Literal

from starlette.requests import Request

from sandbox.standins import tickets
from sandbox.standins.tickets import ApiError

SYSTEMS = ("erp", "crm", "ads", "iam", "tickets", "grc")

JSON = dict[str, Any]
Handler = Callable[[sqlite3.Connection, Request, JSON], tuple[int, JSON]]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _text(body: JSON, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value) == "":
        raise ApiError(400, f"field {name!r} is required")
    return str(value).strip()


def _amount(body: JSON, name: str = "amount") -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"field {name!r} must be a number")
    try:
        return round(float(value), 2)
    except ValueError:
        raise ApiError(400, f"field {name!r} must be a number") from None


# ---------------------------------------------------------------------------------- ERP


def _book(db: sqlite3.Connection, _request: Request, body: JSON) -> tuple[int, JSON]:
    vendor, invoice = _text(body, "vendor"), _text(body, "invoice_number")
    booked = db.execute(
        "select id from ledger where vendor = ? and invoice_number = ?", (vendor, invoice)
    ).fetchone()
    if booked is not None:
        raise ApiError(409, f"invoice {invoice} of {vendor} is already booked (entry {booked[0]})")
    cursor = db.execute(
        "insert into ledger (vendor, invoice_number, po_number, amount, currency, approved_by,"
        " source_run, booked_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            vendor,
            invoice,
            body.get("po_number"),
            _amount(body),
            _text(body, "currency"),
            body.get("approved_by"),
            body.get("run"),
            _now(),
        ),
    )
    return 201, {"entry_id": cursor.lastrowid, "vendor": vendor, "invoice_number": invoice}


def _ledger(db: sqlite3.Connection, _request: Request, _body: JSON) -> tuple[int, JSON]:
    rows = db.execute("select * from ledger order by id").fetchall()
    return 200, {"entries": [dict(r) for r in rows]}


def _vendor_entry(db: sqlite3.Connection, request: Request, body: JSON) -> tuple[int, JSON]:
    vendor = request.path_params["vendor"]
    account = db.execute("select * from vendor_accounts where vendor = ?", (vendor,)).fetchone()
    if account is None:
        raise ApiError(404, f"no vendor account {vendor}")
    currency = _text(body, "currency")
    if currency != account["currency"]:
        raise ApiError(422, f"{vendor} is paid in {account['currency']}, not {currency}")
    amount = _amount(body)
    db.execute(
        "insert into vendor_entries (vendor, invoice_number, amount, currency, ledger_entry,"
        " created_at) values (?, ?, ?, ?, ?, ?)",
        (vendor, _text(body, "invoice_number"), amount, currency, body.get("ledger_entry"), _now()),
    )
    db.execute(
        "update vendor_accounts set balance = round(balance + ?, 2) where vendor = ?",
        (amount, vendor),
    )
    balance = db.execute(
        "select balance from vendor_accounts where vendor = ?", (vendor,)
    ).fetchone()[0]
    return 201, {"vendor": vendor, "balance": balance, "currency": currency}


# ---------------------------------------------------------------------------------- CRM


def _customers(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    user = request.query_params.get("slack_user", "")
    rows = db.execute("select * from customers where slack_user = ?", (user,)).fetchall()
    return 200, {"results": [dict(r) for r in rows]}


def _escalate(db: sqlite3.Connection, _request: Request, body: JSON) -> tuple[int, JSON]:
    cursor = db.execute(
        "insert into escalations (customer, priority, category, summary, source_run, created_at)"
        " values (?, ?, ?, ?, ?, ?)",
        (
            _text(body, "customer"),
            _text(body, "priority"),
            body.get("category"),
            _text(body, "summary")[:2000],
            body.get("run"),
            _now(),
        ),
    )
    return 201, {"id": f"ESC-{cursor.lastrowid}", "status": "open"}


def _attribution(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    client = request.path_params["client"].lower()
    rows = db.execute(
        "select campaign, leads, deals, revenue from attribution"
        " where client = ? order by campaign",
        (client,),
    ).fetchall()
    if not rows:
        raise ApiError(404, f"no client {client}")
    return 200, {"client": client, "period": "last 7 days", "campaigns": [dict(r) for r in rows]}


def _campaign_report(db: sqlite3.Connection, _request: Request, body: JSON) -> tuple[int, JSON]:
    cursor = db.execute(
        "insert into campaign_reports (client, period, summary, totals, approved_by, created_at)"
        " values (?, ?, ?, ?, ?, ?)",
        (
            _text(body, "client"),
            _text(body, "period"),
            _text(body, "summary"),
            json.dumps(body.get("totals") or {}),
            body.get("approved_by"),
            _now(),
        ),
    )
    return 201, {"id": f"REP-{cursor.lastrowid}"}


# ---------------------------------------------------------------------------------- ads


def _ad_metrics(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    client = request.path_params["client"].lower()
    rows = db.execute(
        "select campaign, impressions, clicks, spend, conversions from ad_metrics"
        " where client = ? order by campaign",
        (client,),
    ).fetchall()
    if not rows:
        raise ApiError(404, f"no client {client}")
    return 200, {"client": client, "period": "last 7 days", "campaigns": [dict(r) for r in rows]}


# ---------------------------------------------------------------------------------- IAM


def _employee(db: sqlite3.Connection, request: Request, _body: JSON) -> tuple[int, JSON]:
    user = request.path_params["user"]
    row = db.execute("select * from directory where slack_user = ?", (user,)).fetchone()
    if row is None:
        raise ApiError(404, f"{user} is not in the directory")
    return 200, dict(row)


def _grant(db: sqlite3.Connection, _request: Request, body: JSON) -> tuple[int, JSON]:
    user, system = _text(body, "user"), _text(body, "system")
    employee = db.execute("select * from directory where slack_user = ?", (user,)).fetchone()
    if employee is None:
        raise ApiError(404, f"{user} is not in the directory")
    cursor = db.execute(
        "insert into grants (slack_user, system, reason, approved_by, status, created_at)"
        " values (?, ?, ?, ?, 'active', ?)",
        (user, system, _text(body, "reason"), body.get("approved_by"), _now()),
    )
    grant = f"GR-{cursor.lastrowid}"
    text = (
        f"Hello {employee['name']},\n\nyour access to {system} is active (grant {grant}).\n"
        f"Reason given: {body.get('reason')}\n"
    )
    return 201, {
        "grant_id": grant,
        "status": "active",
        "system": system,
        "email": employee["email"],
        "_mail": (employee["email"], f"Access to {system} granted", text),
    }


# ---------------------------------------------------------------------------------- tickets


def _create_issue(db: sqlite3.Connection, request: Request, fields: Any) -> JSON:
    if not isinstance(fields, dict):
        raise ApiError(400, "fields must be an object")
    project = fields.get("project")
    key = project.get("key") if isinstance(project, dict) else None
    summary = fields.get("summary")
    if not isinstance(key, str) or not isinstance(summary, str) or not summary:
        raise ApiError(400, "fields.project.key and fields.summary are required")
    issue_type = fields.get("issuetype")
    cursor = db.execute(
        "insert into tickets (project, summary, description, issue_type, labels, created_at)"
        " values (?, ?, ?, ?, ?, ?)",
        (
            key,
            summary[:255],
            str(fields.get("description") or ""),
            issue_type.get("name", "Task") if isinstance(issue_type, dict) else "Task",
            json.dumps(fields.get("labels") or []),
            _now(),
        ),
    )
    number = cursor.lastrowid
    issue_key = f"{key}-{number}"
    db.execute("update tickets set key = ? where id = ?", (issue_key, number))
    base = str(request.base_url).rstrip("/")
    return {"id": str(number), "key": issue_key, "self": f"{base}/rest/api/2/issue/{number}"}


def _issue(db: sqlite3.Connection, request: Request, body: JSON) -> tuple[int, JSON]:
    return 201, _create_issue(db, request, body.get("fields"))


def _issues(db: sqlite3.Connection, request: Request, body: JSON) -> tuple[int, JSON]:
    updates = body.get("issueUpdates")
    if not isinstance(updates, list):
        raise ApiError(400, "issueUpdates must be a list")
    issues = [
        _create_issue(db, request, u.get("fields") if isinstance(u, dict) else None)
        for u in updates
    ]
    return 201, {"issues": issues, "errors": []}


# ---------------------------------------------------------------------------------- GRC


def _compliance_report(db: sqlite3.Connection, _request: Request, body: JSON) -> tuple[int, JSON]:
    text = _text(body, "report")
    exceptions = body.get("exceptions")
    count = len(exceptions) if isinstance(exceptions, list) else 0
    cursor = db.execute(
        "insert into compliance_reports (period, exceptions, outcome, reviewed_by, body,"
        " created_at) values (?, ?, ?, ?, ?, ?)",
        (
            _text(body, "period"),
            count,
            _text(body, "outcome"),
            body.get("reviewed_by"),
            text,
            _now(),
        ),
    )
    report = f"AUD-{cursor.lastrowid}"
    # The auditors get the report from Switchboard's `email` step, not from the archive.
    return 201, {"id": report, "exceptions": count}


ENDPOINTS: tuple[tuple[Literal["GET", "POST"], str, str, Handler], ...] = (
    ("POST", "/erp/ledger", "erp", _book),
    ("GET", "/erp/ledger", "erp", _ledger),
    ("POST", "/erp/vendors/{vendor}/entries", "erp", _vendor_entry),
    ("GET", "/crm/customers", "crm", _customers),
    ("POST", "/crm/escalations", "crm", _escalate),
    ("GET", "/crm/clients/{client}/attribution", "crm", _attribution),
    ("POST", "/crm/reports", "crm", _campaign_report),
    ("GET", "/ads/clients/{client}/metrics", "ads", _ad_metrics),
    ("GET", "/iam/directory/{user}", "iam", _employee),
    ("POST", "/iam/grants", "iam", _grant),
    ("POST", "/tickets/rest/api/2/issue", "tickets", _issue),
    ("POST", "/tickets/rest/api/2/issue/bulk", "tickets", _issues),
    ("GET", "/tickets/rest/api/2/search", "tickets", tickets.search),
    ("GET", "/tickets/rest/api/2/issue/{key}", "tickets", tickets.issue),
    ("GET", "/tickets/rest/api/2/issue/{key}/comment", "tickets", tickets.comments),
    ("POST", "/tickets/rest/api/2/issue/{key}/comment", "tickets", tickets.add_comment),
    ("GET", "/tickets/rest/api/2/issue/{key}/transitions", "tickets", tickets.transitions),
    ("POST", "/tickets/rest/api/2/issue/{key}/transitions", "tickets", tickets.transition),
    ("POST", "/grc/reports", "grc", _compliance_report),
)
"""(method, path, system, handler) of every endpoint; the system names the bearer token."""
