"""The ASGI app: ``/slack/events`` (Bolt), ``/hooks/{workflow}`` (signed webhooks),
``/healthz``, ``/readyz``, ``/metrics``; workers and the scheduler run in its lifespan.

Every request to the two ingress routes is counted and timed by trigger kind
(``switchboard_requests_received_total``, ``switchboard_ack_duration_seconds``)
and its log records carry the trigger and the team, channel and user ids.
``/slack/events`` verifies Slack's signature on the raw body before anything parses
it (``bot/slack_ingress.py``): an unsigned request is one ``trigger="unverified"``
count and a short 401, and only a verified, well-formed body reaches Bolt, handed
over already parsed (``slack_ingress.dispatch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import console
from bot.logs import log_context
from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime
from bot.slack_ingress import Refusal, SlackIngress, SlackRequest, dispatch
from bot.webhooks import WebhookReceiver
from workflows import migrate

log = logging.getLogger(__name__)


def create_asgi(runtime: Runtime, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    webhooks = WebhookReceiver(
        runtime.store,
        runtime.workflows,
        runtime.webhook_keys,
        runtime.engine.clock,
        wakeup=runtime.engine.wakeup,
    )

    ingress = SlackIngress(runtime.settings.slack_signing_secret.get_secret_value())

    async def answered(
        about: SlackRequest, started: float, respond: Callable[[], Awaitable[Response]]
    ) -> Response:
        status = 500
        ids = {"team_id": about.team_id, "channel_id": about.channel_id}
        span = runtime.tracing.tracer.start_as_current_span(
            f"ack {about.trigger}", attributes={"switchboard.trigger": about.trigger}
        )
        with log_context(trigger=about.trigger, user_id=about.user_id, **ids), span as current:
            try:
                response = await respond()
                status = response.status_code
                return response
            finally:
                elapsed = time.perf_counter() - started
                runtime.metrics.request_received(about.trigger, status, elapsed)
                current.set_attribute("http.response.status_code", status)
                log.debug("answered", extra={"status": status, "ms": round(elapsed * 1000, 1)})

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        admitted = await ingress.admit(request)
        if isinstance(admitted, Refusal):
            # Never the body, nor ids read from it: the reason names fields, not values.
            log.info(
                "refused a Slack request: %s", admitted.reason, extra={"status": admitted.status}
            )
            elapsed = time.perf_counter() - started
            runtime.metrics.request_received(admitted.trigger, admitted.status, elapsed)
            return JSONResponse({"error": admitted.reason}, status_code=admitted.status)
        verified = admitted  # narrowed to Admitted for the lambda; Bolt gets its parse
        return await answered(
            verified.about, started, lambda: dispatch(runtime.app, request, verified)
        )

    async def hooks(request: Request) -> Response:
        started = time.perf_counter()
        return await answered(SlackRequest("webhook"), started, lambda: webhooks.endpoint(request))

    routes: list[BaseRoute] = [
        Route("/slack/events", _in_flight(runtime, slack_events), methods=["POST"]),
        Route("/hooks/{workflow}", _in_flight(runtime, hooks), methods=["POST"]),
        *_install_routes(runtime),
        *_operations_routes(runtime),
        *console.routes(runtime),  # /console: the operator console (bot/console/)
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=_lifespan(runtime))


def _in_flight(
    runtime: Runtime, endpoint: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Counted in flight from its first byte to its answer: the in-process worker steps
    aside meanwhile, within a bound (``workflows/ingress_load.py``)."""
    load = runtime.ingress_load

    async def counted(request: Request) -> Response:
        load.begin()
        try:
            return await endpoint(request)
        finally:
            load.end()

    return counted


def _install_routes(runtime: Runtime) -> list[BaseRoute]:
    """Multi-workspace mode: Bolt's OAuth flow answers ``/slack/install`` (a state, then the
    redirect to Slack) and ``/slack/oauth_redirect`` (state checked, code exchanged)."""
    if runtime.multi is None:
        return []
    handler = AsyncSlackRequestHandler(runtime.app)

    async def oauth(request: Request) -> Response:
        return await handler.handle(request)

    settings = runtime.multi.oauth_settings
    return [
        Route(settings.install_path, oauth, methods=["GET"]),
        Route(settings.redirect_uri_path, oauth, methods=["GET"]),
    ]


def _lifespan(
    runtime: Runtime,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The runtime starts with the server and stops with it."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return lifespan


def _operations_routes(runtime: Runtime) -> list[BaseRoute]:
    """What operators and orchestrators read: liveness, readiness and the metrics."""

    async def metrics(_request: Request) -> Response:
        body = await runtime.metrics.exposition(runtime.store, runtime.engine.clock.now())
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = await readiness(runtime)
        failing = [
            f"{name}: {check.get('detail', 'failed')}"
            for name, check in checks.items()
            if not check["ok"]
        ]
        body: dict[str, Any] = {"ready": not failing, "checks": checks}
        if failing:
            body["reason"] = "; ".join(failing)
        return JSONResponse(body, status_code=503 if failing else 200)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


READY_DB_TIMEOUT = 3.0
"""Seconds /readyz waits for the database: a database that does not answer is not ready."""


async def readiness(runtime: Runtime) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    unknown = {"ok": False, "detail": "unknown: the database is not reachable"}
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT):
            async with runtime.store.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = {"ok": True, "detail": "reachable"}
            missing = await migrate.pending(runtime.store)
        checks["migrations"] = {
            "ok": not missing,
            "detail": f"pending: {', '.join(missing)}" if missing else "current",
        }
    except TimeoutError:
        checks.setdefault(
            "database", {"ok": False, "detail": f"no answer within {READY_DB_TIMEOUT:g}s"}
        )
        checks.setdefault("migrations", unknown)
    except (OSError, ConnectionError) as exc:
        checks["database"] = {"ok": False, "detail": f"unreachable: {type(exc).__name__}"}
        checks["migrations"] = unknown
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready", reported below
        checks.setdefault("database", {"ok": False, "detail": f"error: {type(exc).__name__}"})
        checks.setdefault("migrations", unknown | {"detail": f"error: {type(exc).__name__}"})
    checks["workflows"] = {
        "ok": bool(runtime.workflows),
        "detail": f"{len(runtime.workflows)} loaded",
    }
    checks["slack"] = await _slack_check(runtime)
    scheduler = _scheduler_check(runtime)
    if scheduler is not None:
        checks["scheduler"] = scheduler
    return checks


async def _slack_check(runtime: Runtime) -> dict[str, Any]:
    if runtime.multi is not None:
        teams = await runtime.multi.installations.installed_teams()
        return {"ok": True, "detail": f"installed in {len(teams)} workspace(s)"}
    identity = runtime.identity.identity
    if identity is None:
        return {"ok": False, "detail": runtime.identity.error or "auth.test has not succeeded yet"}
    detail = f"auth.test ok: team {identity.team_id}, bot {identity.bot_user_id}"
    return {"ok": True, "detail": detail}


def _scheduler_check(runtime: Runtime) -> dict[str, Any] | None:
    """None when this process is not meant to run the scheduler."""
    scheduler = getattr(runtime, "scheduler", None)
    if scheduler is None or not getattr(runtime.settings, "run_scheduler", False):
        return None
    running = getattr(scheduler, "running", None)
    if running is None:
        # Until the scheduler reports it itself, its APScheduler instance tells.
        aps = getattr(scheduler, "_aps", None)
        running = aps is not None and bool(getattr(aps, "running", False))
    return {"ok": bool(running), "detail": "running" if running else "not running"}
