"""Live updates of one run: server-sent ``change`` events while the console watches it.

Once a second the stream reads a fingerprint of the run (its row's ``version``,
``updated_at`` and status, its newest audit record and job) in a ``Store.read()``
snapshot and sends ``change`` when it moved; the page then fetches the run again. A
stream lasts at most ``LIFETIME`` seconds (the browser's EventSource reconnects), so a
server stopping never waits long for a watcher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import StreamingResponse

from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

POLL_SECONDS = 1.0
LIFETIME = 25.0
HEARTBEAT_SECONDS = 10.0


async def fingerprint(store: Store, run_id: str) -> tuple[object, ...]:
    async with store.read() as session:
        run = (
            await session.execute(
                select(RunRow.version, RunRow.updated_at, RunRow.status).where(RunRow.id == run_id)
            )
        ).first()
        audit = await session.scalar(
            select(func.max(AuditRow.seq)).where(AuditRow.run_id == run_id)
        )
        job = await session.scalar(select(func.max(JobRow.id)).where(JobRow.run_id == run_id))
    return (tuple(run) if run else None, audit, job)


async def _events(request: Request, store: Store, run_id: str) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    seen = await fingerprint(store, run_id)
    started = quiet = time.monotonic()
    while time.monotonic() - started < LIFETIME:
        await asyncio.sleep(POLL_SECONDS)
        if await request.is_disconnected():
            return
        now = await fingerprint(store, run_id)
        if now != seen:
            seen, quiet = now, time.monotonic()
            yield "event: change\ndata: {}\n\n"
        elif time.monotonic() - quiet > HEARTBEAT_SECONDS:
            quiet = time.monotonic()
            yield ": keep-alive\n\n"


def stream(request: Request, store: Store, run_id: str) -> StreamingResponse:
    return StreamingResponse(
        _events(request, store, run_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
