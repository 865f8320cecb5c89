"""Concurrency limits that hold across processes: leased slots in the database.

A limit of N for a key (``workflow:<name>``, ``connection:<name>``) is N rows in
``concurrency_slots``. Running a step takes one free slot of each key it is
subject to, in one short transaction, and gives them back when the step is
recorded. A slot is leased like a job: its worker renews it while the step runs,
and a worker killed mid-step loses it when the lease expires, so a crash never
leaks capacity for longer than a lease. A job that finds no free slot goes back
to the queue for a moment (``DEFER_SECONDS``, not counted as an attempt).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.store import Store
from workflows.tables import SlotRow

_SLOTS = cast(Table, SlotRow.__table__)

DEFER_SECONDS = 0.5
"""How long a job that found every slot taken waits before it is tried again (jittered)."""


@dataclass(frozen=True)
class Limit:
    key: str
    size: int


class Slots:
    """Takes and gives back slots for one worker (``owner``)."""

    def __init__(self, store: Store, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._created: dict[str, int] = {}

    async def take(self, limits: Sequence[Limit], job_id: int, now: datetime) -> bool:
        """One slot of every limit, or none of them (and False)."""
        for limit in limits:
            await self._ensure_rows(limit)
        expires = now + timedelta(seconds=self.lease_seconds)
        try:
            async with self.store.transaction() as session:
                for limit in limits:
                    if not await self._take_one(session, limit, job_id, now, expires):
                        raise _AllTaken  # rolls back the slots taken so far
        except _AllTaken:
            return False
        return True

    async def give_back(self, limits: Sequence[Limit], job_id: int) -> None:
        if not limits:
            return
        async with self.store.transaction() as session:
            await session.execute(
                update(_SLOTS)
                .where(
                    _SLOTS.c.key.in_([limit.key for limit in limits]),
                    _SLOTS.c.holder_owner == self.owner,
                    _SLOTS.c.holder_job == job_id,
                )
                .values(holder_owner=None, holder_job=None, expires_at=None)
            )

    async def renew(
        self, session: AsyncSession, now: datetime, job_ids: Collection[int] | None = None
    ) -> None:
        """Extend this worker's slots (with its job leases, in the caller's transaction);
        with ``job_ids``, only those jobs' slots (a dead job's slot must lapse with it)."""
        held = _SLOTS.c.holder_owner == self.owner
        if job_ids is not None:
            held = held & _SLOTS.c.holder_job.in_(job_ids)
        await session.execute(
            update(_SLOTS)
            .where(held)
            .values(expires_at=now + timedelta(seconds=self.lease_seconds))
        )

    async def _ensure_rows(self, limit: Limit) -> None:
        """Create the key's slot rows up to its size, committed (once per process and size):
        rows made inside a take that then rolls back would be gone, yet remembered here."""
        if self._created.get(limit.key, 0) >= limit.size:
            return
        rows = [{"key": limit.key, "slot": n} for n in range(limit.size)]
        insert = sqlite_insert if self.store.is_sqlite else pg_insert
        async with self.store.transaction() as session:
            await session.execute(insert(_SLOTS).on_conflict_do_nothing(), rows)
        self._created[limit.key] = limit.size

    async def _take_one(
        self, session: AsyncSession, limit: Limit, job_id: int, now: datetime, expires: datetime
    ) -> bool:
        # A smaller limit than before leaves the extra rows unused (slot >= size).
        free = (
            select(_SLOTS.c.key, _SLOTS.c.slot)
            .where(
                _SLOTS.c.key == limit.key,
                _SLOTS.c.slot < limit.size,
                (_SLOTS.c.holder_owner.is_(None)) | (_SLOTS.c.expires_at < now),
            )
            .order_by(_SLOTS.c.slot)
            .limit(1)
        )
        if session.bind.dialect.name == "postgresql":
            free = free.with_for_update(skip_locked=True)
        picked = free.cte("picked").prefix_with("MATERIALIZED")
        taken = await session.execute(
            update(_SLOTS)
            .where(and_(_SLOTS.c.key == picked.c.key, _SLOTS.c.slot == picked.c.slot))
            .values(holder_owner=self.owner, holder_job=job_id, expires_at=expires)
            .returning(_SLOTS.c.slot)
        )
        return taken.first() is not None


def defer_seconds() -> float:
    return DEFER_SECONDS * random.uniform(0.5, 1.5)


class _AllTaken(Exception):
    pass
