"""Group commit: callers that write at the same moment share one transaction.

Through SQLAlchemy's async drivers a statement costs a few hundred microseconds
of round trips (aiosqlite: three thread hops each), so under load the commits,
not the rows, set the pace. ``GroupCommit`` queues items while a transaction is
open and hands the next transaction all of them; ``apply`` writes a whole batch
(multi-row statements, one per table) and returns one result per item.

A batch is all or nothing. When it fails, every item is tried alone, so one bad
item (a duplicate key, say) gets its own error and the others still land; a
database outage reaches each waiting caller as its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from workflows.store import Store

Item = TypeVar("Item")
Result = TypeVar("Result")

Apply = Callable[[AsyncSession, Sequence[Item]], Awaitable[Sequence[Result]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, store: Store, apply: Apply[Item, Result], *, urgent: bool = False) -> None:
        self.store = store
        self.apply = apply
        self.urgent = urgent
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is queued; returns once that is committed."""
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to the waiting callers
                    if len(batch) == 1:
                        _fail(batch, exc)
                    else:
                        await self._one_by_one(batch)
                    continue
                for (_, done), result in zip(batch, results, strict=True):
                    if not done.done():
                        done.set_result(result)
        except asyncio.CancelledError as exc:  # shutting down: nobody may wait forever
            _fail(batch + self._pending, exc)
            self._pending = []
            raise

    async def _one_by_one(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        for item, done in batch:
            try:
                (result,) = await self._write([item])
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                _fail([(item, done)], exc)
            else:
                if not done.done():
                    done.set_result(result)

    async def _write(self, items: list[Item]) -> Sequence[Result]:
        async with self.store.transaction(urgent=self.urgent) as session:
            return await self.apply(session, items)


def _fail(batch: Sequence[tuple[object, asyncio.Future[Result]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
