"""Socket Mode, Slack's side: ``apps.connections.open``, the WebSocket link, envelopes, acks.

An app with an app-level token (``xapp-…``) calls ``apps.connections.open`` and
gets a one-use ``ws://`` URL carrying a ticket; on connecting it receives
``hello`` (``num_connections``, ``debug_info``, ``connection_info.app_id``).
From then on Slack's requests arrive as envelopes::

    {"envelope_id": "…", "type": "slash_commands" | "interactive" | "events_api",
     "payload": {…}, "accepts_response_payload": bool,
     "retry_attempt": 0, "retry_reason": ""}

and the app acknowledges each with ``{"envelope_id": "…", "payload": {…}}`` —
the payload is what the HTTP path would have answered in its response body (a
slash command's ephemeral reply, a view_submission's ``response_action``).

Like Slack, the emulator spreads envelopes over the app's open connections,
sends ``disconnect`` (``warning``, ``refresh_requested``, ``link_disabled``)
when asked, and re-delivers an envelope whose connection closed before its ack
to another connection (``retry_attempt`` + 1). An ack is accepted on any of the
app's connections: an SDK that reconnected answers on the new one.

The WebSocket is served by aiohttp on its own loopback port (uvicorn has no
WebSocket library in this environment); the Web API stays on ``asgi_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .delivery import DeliveryResult
from .records import JSON

TICKET_TTL_SECONDS = 30.0
DISCONNECT_GRACE_SECONDS = 10.0
"""Slack closes a connection about ten seconds after telling it ``disconnect``."""
MAX_REDELIVERIES = 3

DisconnectReason = Literal["warning", "refresh_requested", "link_disabled"]
INTERACTIVE_KINDS = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
    }
)
# The interactive payloads whose ack body Slack reads (options, response_action).
ANSWERED_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


@dataclass
class SocketFrame:
    """One message on a link, either way (``direction`` "to_app" | "from_app")."""

    connection: int
    direction: str
    message: JSON
    at: float = field(default_factory=time.time)


@dataclass
class _Link:
    id: int
    ws: web.WebSocketResponse
    draining: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Pending:
    envelope: JSON
    acked: asyncio.Future[JSON]
    link: _Link | None = None


class SocketModeServer:
    """The Socket Mode side of one emulated workspace's app (see the module docstring)."""

    def __init__(self, app_token: str | None, app_id: str) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self.enabled = False
        """True once the app opened a connection: deliveries then go over the socket."""
        self.disconnect_grace = DISCONNECT_GRACE_SECONDS
        self.link_allowed = True
        """False after ``link_disabled`` (Socket Mode turned off in the app's settings)."""
        self.deliver_twice = 0
        """The next this-many envelopes are sent again at once as a retry (``retry_attempt``
        1), as Slack does when an ack is lost: the app must handle each only once."""
        self.frames: list[SocketFrame] = []
        self._links: dict[int, _Link] = {}
        self._link_ids = itertools.count(1)
        self._turn = itertools.count()
        self._tickets: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ opening a link

    async def connections_open(self, request: Request) -> Response:
        """``POST /api/apps.connections.open``: only the app-level token may ask."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:  # slack_sdk sends a header; curl users send a form field
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            token = form.get("token", "")
        if not token:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if not token.startswith("xapp-"):
            return JSONResponse({"ok": False, "error": "not_allowed_token_type"})
        if self.app_token is None or not secrets.compare_digest(token, self.app_token):
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        if not self.link_allowed:
            # Slack does not document this answer; ours names the cause.
            return JSONResponse({"ok": False, "error": "socket_mode_disabled"})
        await self._serve()
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = time.monotonic() + TICKET_TTL_SECONDS
        self.enabled = True
        url = f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"
        return JSONResponse({"ok": True, "url": url})

    async def _serve(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def _link(self, request: web.Request) -> web.StreamResponse:
        expires = self._tickets.pop(request.query.get("ticket", ""), None)
        if expires is None or time.monotonic() > expires:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        link = _Link(next(self._link_ids), ws)
        self._links[link.id] = link
        await self._send(link, self._hello())
        await self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(link, str(message.data))
        finally:
            self._links.pop(link.id, None)
            link.closed.set()
            await self._notify()
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": len(self._links),
            "debug_info": {
                "host": "applink-sandbox",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _on_text(self, link: _Link, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return  # Slack ignores what is not an envelope ack
        if not isinstance(message, dict):
            return
        self.frames.append(SocketFrame(link.id, "from_app", message))
        pending = self._pending.get(str(message.get("envelope_id", "")))
        if pending is not None and not pending.acked.done():
            payload = message.get("payload")
            pending.acked.set_result(payload if isinstance(payload, dict) else {})

    # ------------------------------------------------------------------ delivery

    async def deliver(
        self, kind: str, payload: JSON, retry_attempt: int, retry_reason: str, deadline: float
    ) -> DeliveryResult:
        """Send one request as an envelope and wait (up to ``deadline`` s) for its ack."""
        envelope = _envelope(kind, payload, retry_attempt, retry_reason)
        loop = asyncio.get_running_loop()
        pending = _Pending(envelope, loop.create_future())
        self._pending[str(envelope["envelope_id"])] = pending
        started = time.perf_counter()
        result = DeliveryResult(
            kind=kind,
            status=0,
            body="",
            elapsed_ms=0.0,
            payload=payload,
            retry_num=retry_attempt,
            event_id=payload.get("event_id") if kind == "event_callback" else None,
            at=time.time(),
        )
        try:
            async with asyncio.timeout(deadline):
                ack = await self._until_acked(pending)
        except TimeoutError:
            result.timed_out = True
            result.error = "socket_timeout"
        else:
            result.status = 200
            result.body = json.dumps(ack) if ack else ""
        finally:
            self._pending.pop(str(envelope["envelope_id"]), None)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    async def _until_acked(self, pending: _Pending) -> JSON:
        redeliveries = 0
        while True:
            link = await self._next_link()
            pending.link = link
            await self._send(link, pending.envelope)
            if self.deliver_twice > 0:
                self.deliver_twice -= 1
                retry = pending.envelope | {"retry_attempt": 1, "retry_reason": "timeout"}
                await self._send(await self._next_link(), retry)
            closed: asyncio.Future[Any] = asyncio.ensure_future(link.closed.wait())
            waiting: set[asyncio.Future[Any]] = {pending.acked, closed}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
            if pending.acked.done():
                return pending.acked.result()
            # The link closed before the app acked: Slack hands the envelope to another one.
            redeliveries += 1
            if redeliveries > MAX_REDELIVERIES:
                raise TimeoutError
            pending.envelope["retry_attempt"] = int(pending.envelope["retry_attempt"]) + 1
            pending.envelope["retry_reason"] = "timeout"

    async def _next_link(self) -> _Link:
        """A live link that is not being retired, waiting for the app to open one if needed."""
        async with self._changed:
            while True:
                live = [link for link in self._links.values() if not link.draining]
                if live:
                    return live[next(self._turn) % len(live)]
                await self._changed.wait()

    async def _send(self, link: _Link, message: JSON) -> None:
        self.frames.append(SocketFrame(link.id, "to_app", dict(message)))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await link.ws.send_str(json.dumps(message))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ Slack's side of the link

    @property
    def connections(self) -> int:
        """Open links (draining ones included)."""
        return len(self._links)

    def opened(self) -> int:
        """Links opened so far, closed ones included."""
        return sum(1 for f in self.frames if f.message.get("type") == "hello")

    async def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the app holds ``count`` live links."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: sum(not link.draining for link in self._links.values()) >= count
            )

    async def disconnect(self, reason: DisconnectReason = "refresh_requested") -> None:
        """Tell every live link it will close; a refresh is closed after ``disconnect_grace``."""
        message: JSON = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-sandbox"},
        }
        for link in list(self._links.values()):
            if link.draining:
                continue
            await self._send(link, message)
            if reason == "warning":
                continue
            link.draining = True
            delay = 0.0 if reason == "link_disabled" else self.disconnect_grace
            self._spawn(self._close_later(link, delay))
        if reason == "link_disabled":
            # Socket Mode turned off: requests go to the request URL, no new link opens.
            self.enabled = self.link_allowed = False
        await self._notify()

    async def drop(self) -> None:
        """Close every link at once, without a ``disconnect`` first (a network failure)."""
        for link in list(self._links.values()):
            await link.ws.close(code=1011)

    async def _close_later(self, link: _Link, delay: float) -> None:
        await asyncio.sleep(delay)
        if not link.closed.is_set():
            await link.ws.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for link in list(self._links.values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await link.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _envelope(kind: str, payload: JSON, retry_attempt: int, retry_reason: str) -> JSON:
    if kind == "slash_command":
        envelope_type, answers = "slash_commands", True
    elif kind in INTERACTIVE_KINDS:
        envelope_type, answers = "interactive", kind in ANSWERED_INTERACTIONS
    elif kind == "event_callback":
        envelope_type, answers = "events_api", False
    else:
        raise ValueError(f"{kind} is not delivered over Socket Mode")
    return {
        "envelope_id": secrets.token_hex(12),
        "type": envelope_type,
        "payload": dict(payload),
        "accepts_response_payload": answers,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }
