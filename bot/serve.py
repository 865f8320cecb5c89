"""Long-running modes: ``serve`` (HTTP + workers) and ``worker`` (workers only)."""

from __future__ import annotations

import asyncio
import signal

import uvicorn

from bot.runtime import build_runtime
from bot.server import create_asgi
from bot.settings import Settings


async def serve_http(settings: Settings, *, host: str, port: int, run_workers: int) -> None:
    runtime = build_runtime(settings, run_workers=run_workers)
    config = uvicorn.Config(
        create_asgi(runtime),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    await uvicorn.Server(config).serve()


async def run_workers(settings: Settings, *, concurrency: int) -> None:
    runtime = build_runtime(settings.model_copy(update={"worker_concurrency": concurrency}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
