"""Long-running modes: ``serve`` (HTTP + workers) and ``worker`` (workers only)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import uvicorn

from bot.logs import route_uvicorn_logs
from bot.runtime import build_runtime
from bot.server import create_asgi
from bot.settings import Settings


async def serve_http(settings: Settings, *, host: str, port: int, run_workers: int) -> None:
    runtime = build_runtime(settings, run_workers=run_workers)
    if runtime.socket_mode is not None:
        await runtime.socket_mode.verify()  # a refused SLACK_APP_TOKEN: one line, exit 2
    config = server_config(create_asgi(runtime), host=host, port=port)
    await uvicorn.Server(config).serve()


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for ``serve``: its log lines go through our JSON, scrubbed chain.

    ``log_config=None`` stops uvicorn installing its own handlers (plain text, no scrubber,
    no propagation); ``route_uvicorn_logs`` clears any an earlier server left behind.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    route_uvicorn_logs()
    return config


async def run_workers(settings: Settings, *, concurrency: int) -> None:
    runtime = build_runtime(settings.model_copy(update={"worker_concurrency": concurrency}))
    runtime.socket_mode = None  # Slack's requests go to serve; a worker holding a link gets some
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
