"""Long-running modes: ``serve`` (HTTP + workers) and ``worker`` (workers only)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import uvicorn

from bot import worker_metrics
from bot.db_ready import ensure_ready
from bot.logs import route_uvicorn_logs
from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import ConfigurationError, Settings


async def serve_http(settings: Settings, *, host: str, port: int, run_workers: int) -> None:
    await check_start_up(settings, receives_requests=True)
    runtime = build_runtime(settings, run_workers=run_workers)
    if runtime.socket_mode is not None:
        await runtime.socket_mode.verify()  # a refused SLACK_APP_TOKEN: one line, exit 2
    config = server_config(create_asgi(runtime), host=host, port=port)
    reload_on_sighup(runtime)
    await uvicorn.Server(config).serve()


def reload_on_sighup(runtime: Runtime) -> None:
    """``kill -HUP <pid>`` reloads the workflows folder at once (it is also polled every 2 s)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, runtime.request_reload)


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


async def check_start_up(settings: Settings, *, receives_requests: bool) -> None:
    """Stop at once, in one line, on what would otherwise fail slowly or deep inside.

    Without a token, start-up's ``auth.test`` retried slack.com for ~18 s and ended in a
    traceback; without a migrated database the first claim failed on ``no such table``.
    """
    if not settings.slack_bot_token.get_secret_value():
        raise ConfigurationError("configuration error: SLACK_BOT_TOKEN is not set (xoxb-…)")
    socket_mode = bool(settings.slack_app_token.get_secret_value())
    if (
        receives_requests
        and not socket_mode
        and not settings.slack_signing_secret.get_secret_value()
    ):
        # Requests over HTTP cannot be told from forgeries without it.
        raise ConfigurationError(
            "configuration error: SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN "
            "for Socket Mode)"
        )
    await ensure_ready(settings)


async def run_workers(
    settings: Settings, *, concurrency: int, metrics: tuple[str, int] | None = None
) -> None:
    """Workers only; ``metrics`` (host, port) also serves ``/metrics`` (bot/worker_metrics.py)."""
    sock = worker_metrics.bind(*metrics) if metrics is not None else None
    await check_start_up(settings, receives_requests=False)
    runtime = build_runtime(settings.model_copy(update={"worker_concurrency": concurrency}))
    runtime.socket_mode = None  # Slack's requests go to serve; a worker holding a link gets some
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reload_on_sighup(runtime)
    await runtime.start()
    try:
        async with worker_metrics.serving(runtime, sock):
            await stop.wait()
    finally:
        await runtime.stop()
