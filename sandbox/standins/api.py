"""The stand-in business systems' HTTP APIs: one Starlette app over the stand-ins' SQLite file.

=========================================  ==============================================
``POST /erp/ledger``                       book an invoice (409 if that invoice is booked)
``GET  /erp/ledger``                       the booked entries
``POST /erp/vendors/{vendor}/entries``     post to the vendor's account (the vendor ledger)
``GET  /crm/customers?slack_user=U…``      ``{"results": [customer]}``
``POST /crm/escalations``                  open an escalation for a customer
``GET  /crm/clients/{client}/attribution`` leads, deals and revenue per campaign
``POST /crm/reports``                      record a published campaign report
``GET  /ads/clients/{client}/metrics``     impressions, clicks, spend, conversions per campaign
``GET  /iam/directory/{slack_user}``       role, department and manager of an employee
``POST /iam/grants``                       provision access; e-mails the employee
``POST /tickets/rest/api/2/issue[/bulk]``  create issues, in Jira's request/response shape
``POST /grc/reports``                      archive a compliance report; e-mails the auditors
``GET  /mail``                             what the SMTP sink received (no auth; local only)
=========================================  ==============================================

Every system checks its own bearer token (``Authorization: Bearer …``). Every POST
honours ``Idempotency-Key``: a repeated key on the same path gets the first answer
again (with ``Idempotent-Replayed: true``) and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SYSTEMS = ("erp", "crm", "ads", "iam", "tickets", "grc")
AUDITORS = "audit@example.com"
SENDER = "systems@example.com"

JSON = dict[str, Any]
Handler = Callable[[sqlite3.Connection, Request, JSON], tuple[int, JSON]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Call:
    """One request a stand-in received: what the systems got, for tests and the demo."""

    system: str
    method: str
    path: str
    idempotency_key: str | None
    body: Any
    status: int


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    body: str


@dataclass
class StandinApi:
    database: Path
    tokens: dict[str, str]
    smtp: tuple[str, int] | None = None
    """Where the systems send their e-mail (the SMTP sink); None: they send none."""
    mailbox: list[Mail] = field(default_factory=list)
    """Filled by the SMTP sink; served at ``GET /mail``."""
    calls: list[Call] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        def post(system: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._post(system, request, handler)

            return endpoint

        def get(system: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._get(system, request, handler)

            return endpoint

        return Starlette(
            routes=[
                Route("/", self._index),
                Route("/mail", self._mail),
                Route("/erp/ledger", post("erp", _book), methods=["POST"]),
                Route("/erp/ledger", get("erp", _ledger), methods=["GET"]),
                Route(
                    "/erp/vendors/{vendor}/entries", post("erp", _vendor_entry), methods=["POST"]
                ),
                Route("/crm/customers", get("crm", _customers)),
                Route("/crm/escalations", post("crm", _escalate), methods=["POST"]),
                Route("/crm/clients/{client}/attribution", get("crm", _attribution)),
                Route("/crm/reports", post("crm", _campaign_report), methods=["POST"]),
                Route("/ads/clients/{client}/metrics", get("ads", _ad_metrics)),
                Route("/iam/directory/{user}", get("iam", _employee)),
                Route("/iam/grants", post("iam", _grant), methods=["POST"]),
                Route("/tickets/rest/api/2/issue", post("tickets", _issue), methods=["POST"]),
                Route("/tickets/rest/api/2/issue/bulk", post("tickets", _issues), methods=["POST"]),
                Route("/grc/reports", post("grc", _compliance_report), methods=["POST"]),
            ]
        )

    # ------------------------------------------------------------------ plumbing

    def _authorized(self, system: str, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.tokens[system]}"

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.database, timeout=10, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    async def _get(self, system: str, request: Request, handler: Handler) -> Response:
        if not self._authorized(system, request):
            return _error(401, "missing or wrong bearer token")

        def work() -> tuple[int, JSON]:
            connection = self._connect()
            try:
                return handler(connection, request, {})
            finally:
                connection.close()

        try:
            status, data = await asyncio.to_thread(work)
        except ApiError as exc:
            status, data = exc.status, {"error": str(exc)}
        self.calls.append(Call(system, "GET", request.url.path, None, None, status))
        return JSONResponse(data, status_code=status)

    async def _post(self, system: str, request: Request, handler: Handler) -> Response:
        if not self._authorized(system, request):
            return _error(401, "missing or wrong bearer token")
        key = request.headers.get("idempotency-key")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        path = request.url.path

        def work() -> tuple[int, JSON, bool]:
            connection = self._connect()
            try:
                connection.execute("begin immediate")
                if key:
                    seen = connection.execute(
                        "select status, body from idempotency where key = ? and path = ?",
                        (key, path),
                    ).fetchone()
                    if seen is not None:
                        connection.execute("rollback")
                        return int(seen["status"]), json.loads(seen["body"]), True
                try:
                    status, data = handler(connection, request, body)
                except Exception:
                    connection.execute("rollback")
                    raise
                if key and status < 300:
                    connection.execute(
                        "insert into idempotency values (?, ?, ?, ?)",
                        (key, path, status, json.dumps(_public(data))),
                    )
                connection.execute("commit")
                return status, data, False
            finally:
                connection.close()

        try:
            status, data, replayed = await asyncio.to_thread(work)
        except ApiError as exc:
            status, data, replayed = exc.status, {"error": str(exc)}, False
        self.calls.append(Call(system, "POST", path, key, body, status))
        outgoing = data.pop("_mail", None) if isinstance(data, dict) else None
        if outgoing and not replayed:
            await self._send_mail(*outgoing)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return JSONResponse(data, status_code=status, headers=headers)

    async def _send_mail(self, to: str, subject: str, text: str) -> None:
        if self.smtp is None:
            return
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = SENDER, to, subject
        message.set_content(text)
        host, port = self.smtp
        try:
            await aiosmtplib.send(message, hostname=host, port=port, start_tls=False, timeout=5)
        except (aiosmtplib.SMTPException, OSError):
            return  # a stand-in: the answer to the caller does not depend on the e-mail

    async def _index(self, _request: Request) -> Response:
        return JSONResponse({"systems": list(SYSTEMS), "mail": "/mail", "docs": __doc__})

    async def _mail(self, _request: Request) -> Response:
        return JSONResponse([m.__dict__ for m in self.mailbox])

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        """Read the stand-ins' database (for tests and people poking at the demo)."""
        connection = self._connect()
        try:
            return [dict(row) for row in connection.execute(query, params).fetchall()]
        finally:
            connection.close()


def _public(data: JSON) -> JSON:
    """The answer without the e-mail the system sends after committing (``_mail``)."""
    return {k: v for k, v in data.items() if k != "_mail"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
    return 201, {
        "id": report,
        "emailed_to": AUDITORS,
        "_mail": (AUDITORS, f"Compliance report {report}: {count} exceptions", text),
    }
