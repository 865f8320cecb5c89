"""A view of Slack kept fresh in the background: looked up at start, then every minute.

Who is in a channel or a user group decides who may start, decide or route; asking
Slack on every click would spend its rate limits on the ack path. ``RouteAccess``
and ``StarterPolicy`` keep such a view and subclass ``Refreshing`` for its lifetime:
``start`` fills it before the first request and schedules the refresh, ``stop`` ends it.
A refresh that fails keeps the last known view (the subclasses log why).
"""

from __future__ import annotations

import asyncio
import contextlib

REFRESH_SECONDS = 60.0


class Refreshing:
    refresh_seconds = REFRESH_SECONDS
    task_name = "refresh"
    _task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()
