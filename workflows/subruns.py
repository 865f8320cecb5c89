"""Child runs: the link from a run started by a ``workflow`` step to the step waiting for it.

The parent's step starts the child (``start_run``, deduped by the parent's job, so a
re-executed step gets the same child back) and then links it here. The link and the
child's end meet on the child's run row: ``link`` locks it (PostgreSQL; SQLite has one
writer) and reads its status, and a run's ending transaction writes that row before
``workflows/lifecycle.py`` reads the links. So either the child's end sees the link
(and queues the parent's signal) or the link sees the end (and the step goes on at
once): a child that ends between the two is never missed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from workflows.lifecycle import LIVE
from workflows.store import Store
from workflows.tables import RunRow, SubRunRow

CHILD = "child"
"""Payload key of the signal a child's end queues for its parent's step: the child's id."""


async def link(store: Store, child: str, parent: str, step_id: str, now: datetime) -> str | None:
    """Link ``child`` to the parent's step; returns its status when it has already ended."""
    async with store.transaction() as session:
        query = select(RunRow.status).where(RunRow.id == child)
        if not store.is_sqlite:
            query = query.with_for_update()
        status = await session.scalar(query)
        if await session.get(SubRunRow, child) is None:
            session.add(
                SubRunRow(
                    child_run_id=child, parent_run_id=parent, parent_step=step_id, created_at=now
                )
            )
    return status if status is not None and status not in LIVE else None


async def child_run(store: Store, child: str) -> RunRow | None:
    async with store.read() as session:
        return await session.get(RunRow, child)
