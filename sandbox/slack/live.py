"""What the sandbox page watches live: a change counter and the developer log.

``ChangeFeed`` is a version number that goes up whenever the workspace may have
changed; the page's server-sent-events stream waits on it and tells browsers
to fetch the state again. ``DevLog`` keeps the most recent signed requests to
the app and Web API calls from it, as plain JSON, for the page's developer
panel. Neither does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import deque
from typing import Any

from .delivery import DeliveryResult
from .records import JSON
from .web_api import ApiCall

MAX_TEXT = 20_000  # a log entry's body beyond this is cut: the panel is for reading


class ChangeFeed:
    """A monotonically increasing version; waiters wake when it moves."""

    def __init__(self) -> None:
        self.version = 0
        self._moved = asyncio.Event()

    def bump(self) -> None:
        self.version += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait(self, seen: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the version differs from ``seen``; False when ``timeout`` passed first."""
        if self.version != seen:
            return True
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), timeout)
        return self.version != seen


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


def _jsonable(value: Any) -> Any:
    """Web API arguments arrive as form strings; JSON-looking ones are shown parsed."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return _clip(value)
    if isinstance(value, str):
        return _clip(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return str(value)


class DevLog:
    """The last ``size`` exchanges between the emulator and the app, oldest first."""

    def __init__(self, size: int = 300) -> None:
        self._entries: deque[JSON] = deque(maxlen=size)
        self._seq = itertools.count(1)

    def api_call(self, call: ApiCall) -> None:
        self._entries.append(
            {
                "seq": next(self._seq),
                "at": call.at,
                "direction": "app → Slack",
                "kind": "web_api",
                "title": call.method,
                "status": call.status,
                "ok": call.ok,
                "error": call.error,
                "request": _jsonable(call.args),
                "response": _jsonable(call.response),
                "headers": dict(call.headers),
            }
        )

    def delivery(self, result: DeliveryResult) -> None:
        payload = result.payload
        title = result.kind
        if isinstance(payload, dict):
            # Name the request the way a developer thinks of it: the command, the event type.
            if result.kind == "slash_command":
                title = f"slash_command {payload.get('command', '')} {payload.get('text', '')}"
            elif result.kind == "event_callback":
                event = payload.get("event") or {}
                title = f"event {event.get('type', '')} {event.get('subtype', '') or ''}"
        response: Any = result.json()
        self._entries.append(
            {
                "seq": next(self._seq),
                "at": result.at,
                "direction": "Slack → app",
                "kind": "delivery",
                "title": title.strip(),
                "status": result.status,
                "ok": result.ok,
                "error": result.error,
                "elapsed_ms": round(result.elapsed_ms, 1),
                "retry_num": result.retry_num,
                "request_headers": dict(result.request_headers),
                "request": _jsonable(payload),
                "response": _jsonable(response) if response is not None else _clip(result.body),
            }
        )

    def entries(self, after: int = 0) -> list[JSON]:
        return [e for e in self._entries if e["seq"] > after]
