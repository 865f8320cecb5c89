"""Signed delivery of Slack's requests to the app's request URL.

Slash commands go form-encoded, interaction payloads as ``payload=<json>``
form fields, Events API envelopes as JSON; each is signed (v0) and must be
answered within Slack's 3-second deadline. Events that fail (timeout,
connection failure, non-200) are retried like Slack does: up to three times,
with ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``, unless the app answers
with ``X-Slack-No-Retry: 1``. Retry timing is configurable so tests need not
wait Slack's minutes; with no delays configured, retries happen only when
asked for (:meth:`Deliverer.retry_event`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from .records import JSON
from .signing import signed_headers

if TYPE_CHECKING:
    from .socket_mode import SocketModeServer

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
SLACK_RETRY_DELAYS: tuple[float, ...] = (1.0, 60.0, 300.0)  # roughly: at once, 1 min, 5 min
MAX_EVENT_RETRIES = 3

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass
class DeliveryResult:
    """What happened when Slack's request reached (or failed to reach) the app."""

    kind: str
    status: int
    body: str
    elapsed_ms: float
    payload: Any = None
    timed_out: bool = False
    error: str | None = None
    retry_num: int = 0
    event_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    @property
    def ok(self) -> bool:
        """Slack counts only a 200 within the deadline as success."""
        return self.status == 200 and not self.timed_out

    def json(self) -> Any:
        """The app's response body parsed as JSON, or None when empty / not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Deliverer:
    """Sends signed requests to ``request_url`` and keeps a log of every attempt."""

    def __init__(
        self,
        signing_secret: str,
        request_url: str | None = None,
        deadline: float = 3.0,
        retry_delays: Sequence[float] | None = SLACK_RETRY_DELAYS,
    ) -> None:
        self.signing_secret = signing_secret
        self.request_url = request_url
        self.deadline = deadline
        self.retry_delays = tuple(retry_delays) if retry_delays is not None else None
        self.log: list[DeliveryResult] = []
        self.on_result: Callable[[DeliveryResult], None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._pending_events: dict[str, _PendingEvent] = {}
        self.socket: SocketModeServer | None = None
        """When its app opened a Socket Mode link, requests go there instead of request_url."""

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    # ------------------------------------------------------------------ transport

    async def send(
        self,
        kind: str,
        body: bytes,
        content_type: str,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
        retry_num: int = 0,
        event_id: str | None = None,
        timestamp: int | None = None,
    ) -> DeliveryResult:
        if self.socket is not None and self.socket.enabled:
            reason = (extra_headers or {}).get("X-Slack-Retry-Reason", "")
            sent = await self.socket.deliver(kind, payload, retry_num, reason, self.deadline)
            return self._logged(sent)
        if not self.request_url:
            raise RuntimeError(
                "the emulator has no request_url for the app; set emulator.request_url"
            )
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "Accept": "application/json,*/*",
            **signed_headers(self.signing_secret, body, timestamp),
            **(extra_headers or {}),
        }
        # Build the client before the clock starts: its set-up is ours, not the app's.
        http = self._http()
        started = time.perf_counter()
        result = DeliveryResult(
            kind=kind,
            status=0,
            body="",
            elapsed_ms=0.0,
            payload=payload,
            retry_num=retry_num,
            event_id=event_id,
            request_headers=headers,
            at=time.time(),
        )
        try:
            resp = await http.post(
                self.request_url, content=body, headers=headers, timeout=self.deadline
            )
        except httpx.TimeoutException:
            result.timed_out = True
            result.error = "http_timeout"
        except httpx.HTTPError:
            result.error = "connection_failed"
        else:
            result.status = resp.status_code
            result.body = resp.text
            result.headers = dict(resp.headers)
            if resp.status_code != 200:
                result.error = (
                    "too_many_redirects" if 300 <= resp.status_code < 400 else "http_error"
                )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        if result.elapsed_ms > self.deadline * 1000 and not result.timed_out:
            # The answer came, but after Slack had already given up on it.
            result.timed_out = True
            result.error = "http_timeout"
        return self._logged(result)

    def _logged(self, result: DeliveryResult) -> DeliveryResult:
        self.log.append(result)
        if self.on_result is not None:
            self.on_result(result)
        return result

    async def send_form(
        self, kind: str, form: dict[str, str], timestamp: int | None = None
    ) -> DeliveryResult:
        body = urlencode(form).encode()
        return await self.send(
            kind, body, "application/x-www-form-urlencoded", form, timestamp=timestamp
        )

    async def send_interaction(self, payload: JSON) -> DeliveryResult:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.send(
            str(payload["type"]), body, "application/x-www-form-urlencoded", payload
        )

    async def send_json(self, kind: str, payload: JSON, **kwargs: Any) -> DeliveryResult:
        body = json.dumps(payload).encode()
        return await self.send(kind, body, "application/json", payload, **kwargs)

    # ------------------------------------------------------------------ events

    async def send_event(self, envelope: JSON, spawn: Spawn) -> DeliveryResult:
        """First attempt of an event; failed attempts are retried as configured."""
        event_id = str(envelope["event_id"])
        result = await self.send_json("event_callback", envelope, event_id=event_id)
        self._after_attempt(envelope, result, spawn)
        return result

    async def retry_event(self, event_id: str, spawn: Spawn | None = None) -> DeliveryResult:
        """Send the next retry of a failed event now (for tests driving retries by hand)."""
        pending = self._pending_events.pop(event_id, None)
        if pending is None:
            raise KeyError(f"no failed event awaiting retry: {event_id}")
        return await self._retry(pending, spawn)

    def failed_events(self) -> list[str]:
        """Ids of events whose last attempt failed and that still have retries left."""
        return list(self._pending_events)

    def _after_attempt(self, envelope: JSON, result: DeliveryResult, spawn: Spawn | None) -> None:
        event_id = str(envelope["event_id"])
        self._pending_events.pop(event_id, None)
        if result.ok or result.headers.get("x-slack-no-retry") == "1":
            return
        attempt = result.retry_num + 1
        if attempt > MAX_EVENT_RETRIES:
            return
        pending = _PendingEvent(envelope, attempt, result.error or "unknown_error")
        self._pending_events[event_id] = pending
        if self.retry_delays is not None and spawn is not None:
            delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]
            spawn(self._delayed_retry(pending, delay, spawn))

    async def _delayed_retry(self, pending: _PendingEvent, delay: float, spawn: Spawn) -> None:
        await asyncio.sleep(delay)
        event_id = str(pending.envelope["event_id"])
        if self._pending_events.get(event_id) is not pending:
            return  # retried by hand meanwhile
        del self._pending_events[event_id]
        await self._retry(pending, spawn)

    async def _retry(self, pending: _PendingEvent, spawn: Spawn | None) -> DeliveryResult:
        headers = {
            "X-Slack-Retry-Num": str(pending.attempt),
            "X-Slack-Retry-Reason": pending.reason,
        }
        result = await self.send_json(
            "event_callback",
            pending.envelope,
            extra_headers=headers,
            retry_num=pending.attempt,
            event_id=str(pending.envelope["event_id"]),
        )
        self._after_attempt(pending.envelope, result, spawn)
        return result


@dataclass
class _PendingEvent:
    envelope: JSON
    attempt: int
    reason: str
