"""Slack request identities already handled, so a replayed request does not act twice.

Slack signs a request, not its freshness beyond a 5-minute window: the identical
signed bytes can be posted again inside it. Starts are deduplicated durably by
``dedupe_key``; the other state-changing ``/flow`` subcommands (cancel, retry,
route) remember their ``trigger_id`` here for longer than that window. This is
per process: a replay sent to another process is caught only by the state checks
of the operation itself (a cancelled run cannot be cancelled again).
"""

from __future__ import annotations

import time
from collections import OrderedDict

KEEP_SECONDS = 600.0
"""Twice Slack's signature window: a replay older than this fails the signature check."""
MAX_ENTRIES = 50_000


class SeenRequests:
    def __init__(self, keep_seconds: float = KEEP_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._keep = keep_seconds
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered (and remembers it); False for a replay."""
        now = time.monotonic()
        self._forget_old(now)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def _forget_old(self, now: float) -> None:
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self._keep and len(self._seen) < self._max:
                return
            del self._seen[oldest]


def command_key(team_id: object, trigger_id: object) -> str | None:
    """The identity of one use of a command or shortcut; None if Slack sent no trigger id."""
    return f"{team_id or '-'}:{trigger_id}" if trigger_id else None
