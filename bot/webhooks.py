"""Incoming signed webhooks: ``POST /hooks/{workflow}`` starts a run of a workflow with a
``webhook`` trigger.

The sender signs each delivery like our outgoing webhooks
(``connectors/webhook_out.py``)::

    X-Switchboard-Timestamp: 1718000000          Unix seconds, at most 5 minutes old
    X-Switchboard-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
    Idempotency-Key: <delivery id>               optional

``secret`` is the value of the environment variable the trigger names in
``secret_env`` (read once at start-up by the composition root). A workflow may
declare several webhook triggers; a delivery signed with any of their secrets
is accepted, which is how a secret is rotated without downtime.

The body must be a JSON object of at most ``MAX_BODY_BYTES`` (256 KiB). It
becomes the run's input: each top-level field at ``input.<field>`` (except
``user``, ``channel`` and ``body``, which the run owns) and the whole object at
``input.body``; a string ``text`` field is also the request's text.

Repeated deliveries start one run: the ``Idempotency-Key`` header, else the
body field named by the trigger's ``idempotency_field`` (a path such as
``delivery.id``), is the run's dedupe key. Answers are one-line JSON:

=====  =========================================================================
200    ``{"run_id": …, "duplicate": false}`` (``true``, same id, for a repeat)
400    body is not JSON, nested deeper than 64 levels, not an object, or lacks the
       declared idempotency field
401    signature missing or wrong, or timestamp older than 5 minutes
404    no such workflow, or it has no webhook trigger
413    body larger than 256 KiB
503    the trigger's secret is not set on this server
=====  =========================================================================

Nothing is started on any error. The ack path is one short transaction (the
run and its first job); the worker posts the root message to the workflow's
``channel``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.http_limits import (
    MAX_JSON_DEPTH,
    BadJSON,
    BodyTooLarge,
    IncompleteBody,
    loads_bounded,
    read_capped,
)
from connectors.jsonpath import PathNotFound, select
from connectors.secrets import remember_secrets
from connectors.webhook_out import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from workflows.language.triggers import WebhookTrigger
from workflows.language.workflow import Workflow
from workflows.ports import Clock
from workflows.runs import StartRequest, start_run
from workflows.store import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
TOLERANCE_SECONDS = 300.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESERVED_INPUTS = frozenset({"user", "channel", "body"})
_MAX_PLAIN_KEY = 128


@dataclass(frozen=True)
class WebhookKey:
    """One webhook trigger's secret and how it names a delivery."""

    secret: SecretStr
    idempotency_field: str | None


def resolve_webhook_keys(
    workflows: Mapping[str, Workflow], env: Mapping[str, str]
) -> dict[str, list[WebhookKey]]:
    """Each workflow's webhook secrets, read from ``env``; an unset one is logged and left out."""
    keys: dict[str, list[WebhookKey]] = {}
    for workflow in workflows.values():
        for trigger in workflow.triggers:
            if not isinstance(trigger, WebhookTrigger):
                continue
            keys.setdefault(workflow.name, [])
            secret = env.get(trigger.webhook.secret_env, "")
            if not secret:
                log.warning(
                    "webhook of workflow %s is disabled: %s is not set",
                    workflow.name,
                    trigger.webhook.secret_env,
                )
                continue
            remember_secrets([secret])  # scrubbed from everything stored, sent or logged
            keys[workflow.name].append(
                WebhookKey(SecretStr(secret), trigger.webhook.idempotency_field)
            )
    return keys


class WebhookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WebhookReceiver:
    """The ``/hooks/{workflow}`` endpoint."""

    def __init__(
        self,
        store: Store,
        workflows: Mapping[str, Workflow],
        keys: Mapping[str, list[WebhookKey]],
        clock: Clock,
        wakeup: asyncio.Event | None = None,
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.keys = keys
        self.clock = clock
        self.wakeup = wakeup

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["workflow"]
        try:
            workflow, key, body = await self._authenticate(name, request)
            payload = _parse(body)
            delivery = _delivery_id(request, key, payload)
        except WebhookError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        text = payload.get("text")
        started = await start_run(
            self.store,
            StartRequest(
                workflow=workflow,
                source="webhook",
                text=text if isinstance(text, str) else "",
                dedupe_key=_dedupe_key(workflow.name, delivery) if delivery else None,
                input={k: v for k, v in payload.items() if k not in RESERVED_INPUTS}
                | {"body": payload},
            ),
            self.clock.now(),
        )
        if self.wakeup is not None and not started.duplicate:
            self.wakeup.set()
        return JSONResponse({"run_id": started.run_id, "duplicate": started.duplicate})

    async def _authenticate(
        self, name: str, request: Request
    ) -> tuple[Workflow, WebhookKey, bytes]:
        workflow = self.workflows.get(name)
        if workflow is None or name not in self.keys:
            raise WebhookError(404, f"no workflow {name!r} accepts webhooks")
        body = await _read_limited(request)
        keys = self.keys[name]
        if not keys:
            raise WebhookError(503, "this webhook's secret is not configured on the server")
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise WebhookError(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
        # Headers arrive as latin-1: compare_digest refuses non-ASCII str and int() reads
        # "²" as a digit, so anything but ASCII is a wrong signature, not a crash.
        if not (timestamp.isascii() and signature.isascii()):
            raise WebhookError(401, "signature does not match")
        now = self.clock.now().timestamp()
        for key in keys:
            secret = key.secret.get_secret_value()
            if verify(secret, timestamp, body, signature, now=now, tolerance_s=TOLERANCE_SECONDS):
                return workflow, key, body
        # Checked as if sent now: tells a stale (or far-future) timestamp from a wrong signature.
        if timestamp.isdigit() and any(
            verify(key.secret.get_secret_value(), timestamp, body, signature, now=int(timestamp))
            for key in keys
        ):
            raise WebhookError(401, "timestamp is more than 5 minutes from the server's clock")
        raise WebhookError(401, "signature does not match")


async def _read_limited(request: Request) -> bytes:
    try:
        return await read_capped(request, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        raise WebhookError(413, str(exc)) from None
    except IncompleteBody as exc:
        raise WebhookError(400, str(exc)) from None


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = loads_bounded(body, MAX_JSON_DEPTH)
    except BadJSON as exc:
        raise WebhookError(400, f"body is {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, f"body must be a JSON object, not {type(payload).__name__}")
    return payload


def _delivery_id(request: Request, key: WebhookKey, payload: dict[str, Any]) -> str | None:
    header = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if header:
        return header
    if key.idempotency_field is None:
        return None
    try:
        value = select(payload, key.idempotency_field)
    except PathNotFound:
        value = None
    if value is None or isinstance(value, dict | list) or value == "":
        raise WebhookError(
            400,
            f"body has no {key.idempotency_field!r} (the idempotency field) and no "
            f"{IDEMPOTENCY_HEADER} header",
        )
    return str(value)


def _dedupe_key(workflow: str, delivery: str) -> str:
    # Scoped by workflow, so two senders' ids never collide; long ids are hashed to fit.
    if len(delivery) <= _MAX_PLAIN_KEY and delivery.isprintable():
        return f"webhook:{workflow}:{delivery}"
    return f"webhook:{workflow}:sha256:{hashlib.sha256(delivery.encode()).hexdigest()}"
