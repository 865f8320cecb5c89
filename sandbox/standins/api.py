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
``GET  /tickets/rest/api/2/search``        ``jql=labels = "x"`` only
``GET|POST …/issue/{key}/comment``         comments, with their ``properties``
``GET|POST …/issue/{key}/transitions``     To Do → In Progress → Done (and back)
``POST /grc/reports``                      archive a compliance report
``GET  /mail``                             what the SMTP sink received (no auth; local only)
=========================================  ==============================================

Every system checks its own bearer token (``Authorization: Bearer …``). Every POST
honours ``Idempotency-Key``: a repeated key on the same path gets the first answer
again (with ``Idempotent-Replayed: true``) and changes nothing.
"""

from __future__ import annotations

import asyncio
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

from sandbox.standins.systems import ENDPOINTS, JSON, SYSTEMS, Handler
from sandbox.standins.tickets import ApiError

SENDER = "systems@example.com"


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
    message_id: str = ""
    attachments: list[str] = field(default_factory=list)
    """File names of the message's attachments."""


@dataclass
class StandinApi:
    database: Path
    tokens: dict[str, str]
    smtp: tuple[str, int] | None = None
    """Where the systems send their e-mail (the SMTP sink); None: they send none."""
    mailbox: list[Mail] = field(default_factory=list)
    """Filled by the SMTP sink; served at ``GET /mail``."""
    calls: list[Call] = field(default_factory=list)
    lost_answers: dict[str, int] = field(default_factory=dict)
    """Fault injection, by path: the next N POSTs commit their effect, then answer 500 — an
    answer lost on the way back, so the caller cannot know whether the effect happened."""

    @property
    def app(self) -> Starlette:
        def endpoint(
            method: str, system: str, handler: Handler
        ) -> Callable[[Request], Awaitable[Response]]:
            serve = self._post if method == "POST" else self._get

            async def answer(request: Request) -> Response:
                return await serve(system, request, handler)

            return answer

        routes = [Route("/", self._index), Route("/mail", self._mail)]
        for method, path, system, handler in ENDPOINTS:
            routes.append(Route(path, endpoint(method, system, handler), methods=[method]))
        return Starlette(routes=routes)

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
        if status < 300 and self.lost_answers.get(path, 0) > 0:
            self.lost_answers[path] -= 1
            return _error(500, "the answer was lost (injected fault)")
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
