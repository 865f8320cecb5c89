"""Work that follows an ack: Web API calls a listener must make but must not wait for.

With ``process_before_response=True`` the HTTP answer to Slack leaves when the
listener returns, so a listener records what it must (one transaction), hands
follow-up calls (open a modal, answer ephemerally) to ``Background.spawn`` and
returns. These are conveniences for the person clicking, not state: durable
work always goes through the job queue instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("follow-up %s failed: %s", task.get_name(), exc)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
