"""``switchboard worker --metrics-port``: the worker's own ``GET /metrics``.

With roles split (``serve --no-worker`` plus ``worker`` processes) steps, runs, AI and
connector calls happen in workers; each serves the same registry ``serve`` does
(``bot/metrics.py``) so Prometheus scrapes every process and no series vanishes.
Port 0 binds a free port and logs it. Only ``/metrics`` (and ``/healthz``): the worker
takes no Slack requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.logs import route_uvicorn_logs
from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime
from bot.settings import ConfigurationError

log = logging.getLogger("switchboard.worker")


def metrics_app(runtime: Runtime) -> Starlette:
    async def metrics(_request: Request) -> Response:
        body = await runtime.metrics.exposition(runtime.store, runtime.engine.clock.now())
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before start-up so a taken port fails in one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"configuration error: --metrics-port {port} on {host}: {exc.strerror}"
        ) from None
    return sock


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, sock: socket.socket | None) -> AsyncIterator[None]:
    """Serve ``/metrics`` on ``sock`` while the block runs; nothing when ``sock`` is None."""
    if sock is None:
        yield
        return
    config = uvicorn.Config(
        metrics_app(runtime), log_level="warning", log_config=None, access_log=False
    )
    route_uvicorn_logs()
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="switchboard-worker-metrics")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("worker metrics at http://%s:%d/metrics", shown, port, extra={"metrics_port": port})
    try:
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()
