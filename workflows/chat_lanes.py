"""The order and the amount of what the outbox sends: priorities and coalescing, per process.

Slack paces ``chat.postMessage`` per channel (about one a second) and ``chat.update``
per workspace (Tier 3). Two rules keep what people wait for in front:

- **People first.** A delivery is ``ROOT`` (a run's root, or the first reply under
  someone's own message), ``HUMAN`` (cards people click, decisions, outcomes, a
  workflow's own posts) or ``CARD`` (run-card updates). A delivery enters its lane
  (posts: the channel; updates: the workspace) only while no delivery of a higher rank
  is in that lane (in the pacer or on the wire), and ``CARD`` one at a time per lane and
  only after ``QUIET_SECONDS`` without a higher rank in it:
  a run card never sits in the pacer in front of another run's root, and the roots of
  a busy channel go out before the runs' own posts.
- **Last state wins.** Deliveries are per outbox key. A state sent while an earlier one
  of the same key is still waiting replaces it: the message is sent once, in its latest
  state. A caller that waits (``Lanes.deliver``) returns only once its state, or a later
  one, has landed, so the final state always lands; a caller that does not wait
  (``Lanes.later``) has its state delivered in the background, errors logged.

A slot a caller of a higher rank joins is promoted: it waits no longer than that caller.
The price of ranks: in one channel where new runs arrive faster than Slack posts, the
runs' own posts wait until the roots stop coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from workflows.ports import ChatError, MessageRef

log = logging.getLogger(__name__)

Priority = Literal["root", "human", "card"]
ROOT: Priority = "root"
HUMAN: Priority = "human"
CARD: Priority = "card"
_RANK: dict[Priority, int] = {CARD: 0, HUMAN: 1, ROOT: 2}
BACKGROUND_TRIES = 6
"""Tries of a background delivery on 429 or 5xx (after Retry-After, else 2, 4, 8 … s)."""
QUIET_SECONDS = 1.0
"""A run card enters a lane only after this long without anything of a higher rank in it:
between two batches of roots the lane is empty for milliseconds, and a card let in then
would sit in the pacer in front of the next root."""
Deliver = Callable[[Callable[[tuple[str, str]], Awaitable[None]]], Awaitable[MessageRef]]
"""One delivery: given ``enter(lane)`` (awaited just before the chat call), the message."""


@dataclass
class _Slot:
    deliver: Deliver | None = None
    priority: Priority = CARD
    wanted: int = 0
    landed: int = 0
    busy: bool = False
    ref: MessageRef | None = None
    entered: tuple[tuple[str, str], int] | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class _Superseded(Exception):
    """A newer state of the key arrived while this one waited for its lane."""


class Lanes:
    def __init__(self, quiet: float = QUIET_SECONDS) -> None:
        self.quiet = quiet
        self._busy_until: dict[tuple[str, str], float] = {}
        self._slots: dict[str, _Slot] = {}
        self._in_lane: Counter[tuple[tuple[str, str], int]] = Counter()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    async def deliver(self, key: str, deliver: Deliver, priority: Priority = HUMAN) -> MessageRef:
        """Send this state of ``key`` and return once it (or a later state) has landed."""
        slot, mine = await self._want(key, deliver, priority)
        while slot.landed < mine:
            if slot.busy:
                await slot.idle.wait()
            else:
                await self._drive(key, slot)  # raises when the delivery fails
        assert slot.ref is not None
        return slot.ref

    async def later(self, key: str, deliver: Deliver, priority: Priority = CARD) -> None:
        """Send this state of ``key`` in the background (Slack's 429s and 5xx retried)."""
        slot, _ = await self._want(key, deliver, priority)
        if not slot.busy:
            task = asyncio.create_task(self._quietly(key, slot))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def pending(self) -> int:
        """Keys with a state not yet landed (or being sent)."""
        return len(self._slots)

    async def drain(self) -> None:
        """Wait for the background deliveries started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _want(self, key: str, deliver: Deliver, priority: Priority) -> tuple[_Slot, int]:
        slot = self._slots.setdefault(key, _Slot())
        slot.deliver = deliver
        slot.wanted += 1
        if _RANK[priority] > _RANK[slot.priority]:
            slot.priority = priority
            async with self._changed:
                self._changed.notify_all()  # a waiting CARD slot of this key may go now
        return slot, slot.wanted

    async def _quietly(self, key: str, slot: _Slot) -> None:
        for attempt in range(1, BACKGROUND_TRIES + 1):
            if slot.busy or slot.landed >= slot.wanted:
                return  # another driver has it, or it landed meanwhile
            try:
                await self._drive(key, slot)
                return
            except ChatError as exc:
                if not exc.retryable or attempt == BACKGROUND_TRIES:
                    if exc.retryable:
                        log.warning("could not update chat", extra={"key": key, "error": str(exc)})
                    # No chat at all, a message gone, or Slack down for long: forget the key
                    # (a later state starts afresh), so a process without chat keeps nothing.
                    if not slot.busy and self._slots.get(key) is slot:
                        del self._slots[key]
                    return
                await asyncio.sleep(getattr(exc, "retry_after", None) or min(2.0**attempt, 30.0))

    async def _drive(self, key: str, slot: _Slot) -> None:
        slot.busy = True
        slot.idle.clear()
        try:
            while slot.landed < slot.wanted:
                version, deliver = slot.wanted, slot.deliver
                assert deliver is not None
                try:
                    slot.ref = await deliver(
                        functools.partial(self._enter, slot=slot, version=version)
                    )
                except _Superseded:
                    continue  # send the newest state instead
                finally:
                    await self._leave(slot)
                slot.landed = version
        finally:
            slot.busy = False
            slot.idle.set()
            if slot.landed >= slot.wanted and self._slots.get(key) is slot:
                del self._slots[key]

    async def _enter(self, lane: tuple[str, str], slot: _Slot, version: int) -> None:
        """Called by the delivery right before its chat call, with the lane it uses."""
        async with self._changed:
            while True:
                rank = _RANK[slot.priority]
                if self._may_enter(lane, rank):
                    wait = self._busy_until.get(lane, 0.0) - time.monotonic() if not rank else 0
                    if wait <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), wait)
                else:
                    await self._changed.wait()
            if slot.wanted != version:
                raise _Superseded
            self._in_lane[(lane, rank)] += 1
            slot.entered = (lane, rank)

    def _may_enter(self, lane: tuple[str, str], rank: int) -> bool:
        higher = any(self._in_lane[(lane, r)] for r in range(rank + 1, len(_RANK)))
        return not higher and (rank > 0 or not self._in_lane[(lane, 0)])

    async def _leave(self, slot: _Slot) -> None:
        if slot.entered is None:
            return
        entered, slot.entered = slot.entered, None
        async with self._changed:
            if entered[1]:
                self._busy_until[entered[0]] = time.monotonic() + self.quiet
            self._in_lane[entered] -= 1
            if self._in_lane[entered] <= 0:
                del self._in_lane[entered]
            self._changed.notify_all()
