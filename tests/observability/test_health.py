"""``/readyz``: what it checks, and a clear 503 when the database is away or silent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx

from bot.runtime import build_runtime
from bot.server import READY_DB_TIMEOUT, readiness
from bot.settings import load_settings
from tests.support.harness import BOT_TOKEN, running_bot
from tests.support.stores import Database


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)


async def test_ready_when_database_slack_and_scheduler_are(database: Database) -> None:
    async with running_bot(database, SWITCHBOARD_SCHEDULER=True) as harness:
        response = await get(f"{harness.bot_url}/readyz")
        alive = await get(f"{harness.bot_url}/healthz")
    assert alive.status_code == 200
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True and "reason" not in body
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["detail"] == "current"
    assert checks["slack"]["ok"] and checks["slack"]["detail"].startswith("auth.test ok")
    assert checks["scheduler"] == {"ok": True, "detail": "running"}
    assert checks["workflows"]["ok"]


async def test_not_ready_with_a_reason_when_the_database_refuses() -> None:
    refused = Database("postgres", "postgresql+asyncpg://postgres@127.0.0.1:9/none", None)
    async with running_bot(refused, run_workers=0, SWITCHBOARD_SCHEDULER=False) as harness:
        response = await get(f"{harness.bot_url}/readyz")
        metrics = await get(f"{harness.bot_url}/metrics")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["reason"].startswith("database: unreachable")
    assert body["checks"]["slack"]["ok"], "only the database is at fault"
    assert "scheduler" not in body["checks"], "not configured in this process"
    assert metrics.status_code == 200
    assert "switchboard_database_up 0.0" in metrics.text


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_not_ready_when_the_database_does_not_answer() -> None:
    async with silent_server() as port:
        settings = load_settings(
            DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none",
            SLACK_BOT_TOKEN=BOT_TOKEN,
        )
        runtime = build_runtime(settings, run_workers=0)
        started = time.monotonic()
        try:
            checks = await readiness(runtime)
        finally:
            await runtime.store.dispose()
    assert time.monotonic() - started < READY_DB_TIMEOUT + 2
    assert checks["database"] == {
        "ok": False,
        "detail": f"no answer within {READY_DB_TIMEOUT:g}s",
    }
    assert checks["migrations"]["ok"] is False
