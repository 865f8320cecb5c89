"""How busy this process's ingress is, so an in-process worker can step aside for acks.

``switchboard serve`` runs its worker on the event loop that answers Slack; a worker
claiming jobs and starting steps while requests arrive makes those requests wait (at
100 req/s, acks 11.7x a bare Bolt app's p50). The ingress counts its requests here
(``begin``/``end``); the worker waits for ``quiet()`` before it claims or starts a step.
Bounded: after ``max_defer_seconds`` the worker goes ahead however busy the ingress is,
so a constant stream of requests cannot starve it. The composition root builds one and
hands it to both sides (this layer knows nothing of Slack).
"""

from __future__ import annotations

import asyncio
import time


class IngressLoad:
    def __init__(self, *, quiet_seconds: float = 0.01, max_defer_seconds: float = 0.1) -> None:
        self.quiet_seconds = quiet_seconds
        """Idle means no request in flight and none ended within this long."""
        self.max_defer_seconds = max_defer_seconds
        """The longest one ``quiet()`` waits: the worker's bound against starvation."""
        self.busy_claims = 1
        """Jobs a worker claims at once after waiting: the ingress gets the loop back soon."""
        self.in_flight = 0
        self.deferrals = 0
        """How many times ``quiet()`` had to wait (observable by tests and operators)."""
        self._last_end = float("-inf")
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def end(self) -> None:
        self.in_flight -= 1
        self._last_end = time.monotonic()
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    def busy(self) -> bool:
        return self.in_flight > 0 or time.monotonic() - self._last_end < self.quiet_seconds

    async def quiet(self) -> bool:
        """Return once the ingress is idle, or after ``max_defer_seconds`` at most; True
        when it had to wait (the ingress is busy: the caller takes little at a time)."""
        if not self.busy():
            return False
        self.deferrals += 1
        deadline = time.monotonic() + self.max_defer_seconds
        while self.busy() and (left := deadline - time.monotonic()) > 0:
            if self.in_flight:
                try:
                    async with asyncio.timeout(left):
                        await self._idle.wait()
                except TimeoutError:
                    return True
            else:
                gap = self.quiet_seconds - (time.monotonic() - self._last_end)
                await asyncio.sleep(max(0.0, min(gap, left)))
        return True
