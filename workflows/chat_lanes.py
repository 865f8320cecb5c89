"""The order and the amount of what the outbox sends: priorities and coalescing, per process.

Slack paces ``chat.postMessage`` per channel (about one a second) and ``chat.update``
per workspace (Tier 3). Two rules keep what people wait for in front:

- **Human first.** A delivery is ``HUMAN`` (roots, cards people click, decisions,
  outcomes, a workflow's own posts) or ``CARD`` (run-card updates). A ``CARD``
  delivery enters its lane (posts: the channel; updates: the workspace) only while no
  ``HUMAN`` delivery of that lane is waiting or in flight, and one ``CARD`` at a time
  per lane, so a run card never sits in the pacer in front of another run's root.
- **Last state wins.** Deliveries are per outbox key. A state sent while an earlier one
  of the same key is still waiting replaces it: the message is sent once, in its latest
  state. A caller that waits (``Lanes.deliver``) returns only once its state, or a later
  one, has landed, so the final state always lands; a caller that does not wait
  (``Lanes.later``) has its state delivered in the background, errors logged.

A ``CARD`` slot a ``HUMAN`` caller joins is promoted: it waits no longer than the human.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from workflows.ports import ChatError, MessageRef

log = logging.getLogger(__name__)

Priority = Literal["human", "card"]
HUMAN: Priority = "human"
CARD: Priority = "card"
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
    entered: tuple[tuple[str, str], Priority] | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class _Superseded(Exception):
    """A newer state of the key arrived while this one waited for its lane."""


class Lanes:
    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._human: Counter[tuple[str, str]] = Counter()
        self._card_busy: set[tuple[str, str]] = set()
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

    async def later(self, key: str, deliver: Deliver) -> None:
        """Send this state of ``key`` in the background, at ``CARD`` priority."""
        slot, _ = await self._want(key, deliver, CARD)
        if not slot.busy:
            task = asyncio.create_task(self._quietly(key, slot))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the background deliveries started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _want(self, key: str, deliver: Deliver, priority: Priority) -> tuple[_Slot, int]:
        slot = self._slots.setdefault(key, _Slot())
        slot.deliver = deliver
        slot.wanted += 1
        if priority == HUMAN and slot.priority != HUMAN:
            slot.priority = HUMAN
            async with self._changed:
                self._changed.notify_all()  # a waiting CARD slot of this key may go now
        return slot, slot.wanted

    async def _quietly(self, key: str, slot: _Slot) -> None:
        try:
            await self._drive(key, slot)
        except ChatError as exc:  # the next state of the key, or the run's end, sends again
            if not exc.retryable:  # no chat at all, or a message gone: nothing to tell
                return
            log.warning("could not update a run card", extra={"key": key, "error": str(exc)})

    async def _drive(self, key: str, slot: _Slot) -> None:
        slot.busy = True
        slot.idle.clear()
        try:
            while slot.landed < slot.wanted:
                version, deliver = slot.wanted, slot.deliver
                assert deliver is not None
                try:
                    slot.ref = await deliver(lambda lane, v=version: self._enter(lane, slot, v))
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
            if slot.priority == HUMAN:
                self._human[lane] += 1
                slot.entered = (lane, HUMAN)
                return
            await self._changed.wait_for(
                lambda: slot.priority == HUMAN
                or (not self._human[lane] and lane not in self._card_busy)
            )
            if slot.wanted != version:
                raise _Superseded
            if slot.priority == HUMAN:
                self._human[lane] += 1
                slot.entered = (lane, HUMAN)
            else:
                self._card_busy.add(lane)
                slot.entered = (lane, CARD)

    async def _leave(self, slot: _Slot) -> None:
        if slot.entered is None:
            return
        (lane, priority), slot.entered = slot.entered, None
        async with self._changed:
            if priority == HUMAN:
                self._human[lane] -= 1
                if self._human[lane] <= 0:
                    del self._human[lane]
            else:
                self._card_busy.discard(lane)
            self._changed.notify_all()
