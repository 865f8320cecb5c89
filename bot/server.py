"""The ASGI app: ``/slack/events`` (Bolt), ``/healthz``, ``/readyz``;
workers run in its lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.runtime import Runtime
from workflows import migrate


def create_asgi(runtime: Runtime, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    handler = AsyncSlackRequestHandler(runtime.app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = await readiness(runtime)
        ok = all(check["ok"] for check in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[BaseRoute] = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def readiness(runtime: Runtime) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        async with runtime.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        missing = await migrate.pending(runtime.store)
        checks["database"] = {"ok": True}
        checks["migrations"] = {
            "ok": not missing,
            "detail": f"pending: {', '.join(missing)}" if missing else "current",
        }
    except (OSError, ConnectionError) as exc:
        checks["database"] = {"ok": False, "detail": f"unreachable: {type(exc).__name__}"}
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready", reported below
        checks["database"] = {"ok": False, "detail": f"error: {type(exc).__name__}"}
    checks["workflows"] = {
        "ok": bool(runtime.workflows),
        "detail": f"{len(runtime.workflows)} loaded",
    }
    return checks
