"""The sandbox web page's HTTP surface: a Slack-like client for the emulator.

Routes (Starlette, to serve beside the emulator's Web API):

- ``GET /`` the page; ``GET /sandbox/static/*`` its files (plain HTML/CSS/JS).
- ``GET /sandbox/state?user=alice`` the workspace as that user sees it (JSON).
- ``GET /sandbox/events`` server-sent events: ``change`` whenever it may have changed.
- ``GET /sandbox/devlog?after=N`` signed requests to the app and Web API calls.
- ``POST /sandbox/act/{action}`` act as a user: ``command``, ``message``, ``click``,
  ``submit``, ``close``, ``react``, ``shortcut``, ``home``.

Anyone who can reach these can act as anyone, so ``SameOriginGuard`` (which the demo
wraps its whole app in) lets only the page itself use them: the Host must be one of
the demo's own names with its port (a DNS-rebound name is refused), a state-changing
request must come from the same origin, and an action's body must be
``application/json`` (which a cross-site page cannot send without a CORS preflight,
and none is ever granted). Refusals are 403 (415 for the body type) with one reason.

Every action goes through :class:`SlackEmulator`'s delivery methods, so the app
receives a real signed HTTP request in Slack's shape; the page never calls the
app or changes the workspace by itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from .delivery import DeliveryResult
from .emulator import SlackEmulator
from .live import ChangeFeed, DevLog
from .oidc import SESSION_COOKIE
from .snapshot import snapshot
from .state import JSON

WEB_DIR = Path(__file__).resolve().parent / "web"
# The page builds DOM nodes from text and never evaluates markup; the policy is a second lock.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: http: https:; connect-src 'self'; frame-ancestors 'none'"
)
DEFAULT_SHORTCUTS: tuple[tuple[str, str], ...] = (("send_to_switchboard", "Send to Switchboard"),)
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class Tip:
    """One step of the guided tour: who types what where, and what to expect."""

    title: str
    user: str
    channel: str
    text: str
    expect: str


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a browser says of its own page's requests (and "none" for a typed URL).
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """``Host`` values a page served on ``host:port`` is reached by: loopback, or ``host``."""
    names = set(LOOPBACK_NAMES)
    if host not in ("", "0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host else host)
    hosts = {f"{name.lower()}:{port}" for name in names}
    return frozenset(hosts | (set(map(str.lower, names)) if port == 80 else set()))


class SameOriginGuard:
    """ASGI middleware refusing other Hosts, other Origins and non-JSON actions (see above)."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope["method"], scope["path"], Headers(scope=scope))
            if refusal is not None:
                status, reason = refusal
                await JSONResponse({"ok": False, "error": reason}, status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, method: str, path: str, headers: Headers) -> tuple[int, str] | None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return 403, "unknown Host: the sandbox answers only on its own address"
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return 403, "cross-origin request refused"
        if headers.get("sec-fetch-site", "same-origin") not in SAME_SITE_FETCHES:
            return 403, "cross-site request refused"
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if path.startswith("/sandbox/act/") and media_type != "application/json":
            return 415, "an action's body must be application/json"
        return None


class ActionError(Exception):
    """A request the page made that a person could not have made (400 with a reason)."""


Action = Callable[[JSON], Awaitable[JSON]]


def _delivery(result: DeliveryResult | None) -> JSON:
    if result is None:
        return {"delivered": False}
    return {
        "delivered": True,
        "status": result.status,
        "acked": result.ok,
        "outcome": result.outcome,
        "error": result.error,
        "timed_out": result.timed_out,
        "elapsed_ms": round(result.elapsed_ms, 1),
    }


def _text(body: JSON, key: str, required: bool = True) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ActionError(f"missing {key}")
        return ""
    if not isinstance(value, str):
        raise ActionError(f"{key} must be a string")
    return value


class SandboxPage:
    """Serves the page for one emulator; see the module docstring."""

    def __init__(
        self,
        emulator: SlackEmulator,
        *,
        personas: Mapping[str, str] | None = None,
        walkthrough: Sequence[Tip] = (),
        shortcuts: Sequence[tuple[str, str]] = DEFAULT_SHORTCUTS,
        console: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.console = console
        """Where the bot's console signs in (the demo's ``/console/auth/login``): a link."""
        self.personas = dict(personas or {})
        self.walkthrough = tuple(walkthrough)
        self.shortcuts = tuple(shortcuts)
        self.feed = ChangeFeed()
        self.devlog = DevLog()
        self._closing = asyncio.Event()
        emulator.on_api_call(self._on_api_call)
        emulator.on_delivery(self._on_delivery)
        self._actions: dict[str, Action] = {
            "command": self._command,
            "message": self._message,
            "click": self._click,
            "submit": self._submit,
            "close": self._close,
            "react": self._react,
            "shortcut": self._shortcut,
            "home": self._home,
        }

    # ------------------------------------------------------------------ wiring

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/sandbox/state", self.state, methods=["GET"]),
            Route("/sandbox/events", self.events, methods=["GET"]),
            Route("/sandbox/devlog", self.log, methods=["GET"]),
            Route("/sandbox/act/{action}", self.act, methods=["POST"]),
            Mount("/sandbox/static", app=StaticFiles(directory=WEB_DIR), name="sandbox-static"),
        ]

    def close(self) -> None:
        """End the live streams (so a server can stop without waiting on browsers)."""
        self._closing.set()
        self.feed.bump()

    def _on_api_call(self, call: Any) -> None:
        self.devlog.api_call(call)
        self.feed.bump()

    def _on_delivery(self, result: DeliveryResult) -> None:
        self.devlog.delivery(result)
        self.feed.bump()

    # ------------------------------------------------------------------ reads

    async def index(self, _request: Request) -> Response:
        return FileResponse(
            WEB_DIR / "index.html",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
        )

    async def state(self, request: Request) -> Response:
        user = request.query_params.get("user") or self._default_user()
        try:
            body = snapshot(self.emulator, user, self.personas)
        except KeyError as exc:
            return JSONResponse({"ok": False, "error": str(exc.args[0])}, status_code=404)
        body["version"] = self.feed.version
        body["walkthrough"] = [asdict(tip) for tip in self.walkthrough]
        body["shortcuts"] = [{"callback_id": c, "name": n} for c, n in self.shortcuts]
        body["console"] = self.console
        response = JSONResponse(body, headers={"Cache-Control": "no-store"})
        # This browser is now "signed in to Slack" as the acting user: Sign in with Slack
        # (the demo's console) asks them (sandbox/slack/oidc.py).
        response.set_cookie(SESSION_COOKIE, body["me"]["id"], httponly=True, samesite="lax")
        return response

    def _default_user(self) -> str:
        if self.walkthrough:
            return self.walkthrough[0].user
        ws = self.emulator.workspace
        return next(u.id for u in ws.users.values() if not u.is_bot)

    async def log(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        return JSONResponse({"entries": self.devlog.entries(after)})

    async def events(self, _request: Request) -> Response:
        return StreamingResponse(
            self._stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _stream(self) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        seen = -1
        idle = 0.0
        while not self._closing.is_set():
            if self.feed.version != seen:
                # A burst of Web API calls is one refresh, not one per call.
                await asyncio.sleep(0.05)
                seen = self.feed.version
                idle = 0.0
                yield f"event: change\ndata: {json.dumps({'version': seen})}\n\n"
                continue
            if not await self.feed.wait(seen, timeout=1.0):
                idle += 1.0
                if idle >= HEARTBEAT_SECONDS:
                    idle = 0.0
                    yield ": keep-alive\n\n"

    # ------------------------------------------------------------------ actions

    async def act(self, request: Request) -> Response:
        action = self._actions.get(request.path_params["action"])
        if action is None:
            return JSONResponse({"ok": False, "error": "unknown action"}, status_code=404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"ok": False, "error": "body must be an object"}, status_code=400)
        try:
            result = await action(body)
        except (ActionError, LookupError, PermissionError, ValueError) as exc:
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            return JSONResponse({"ok": False, "error": message}, status_code=400)
        finally:
            self.feed.bump()
        return JSONResponse({"ok": True, **result})

    async def _command(self, body: JSON) -> JSON:
        line = _text(body, "text").strip()
        if not line.startswith("/"):
            raise ActionError("a slash command starts with /")
        command, _, text = line.partition(" ")
        result = await self.emulator.slash_command(
            _text(body, "user"), _text(body, "channel"), text.strip(), command=command
        )
        return _delivery(result)

    async def _message(self, body: JSON) -> JSON:
        posted = await self.emulator.user_posts(
            _text(body, "user"),
            _text(body, "channel"),
            _text(body, "text"),
            thread_ts=_text(body, "thread_ts", required=False) or None,
        )
        return {"ts": posted["ts"], "channel": posted["channel"]}

    async def _click(self, body: JSON) -> JSON:
        user = _text(body, "user")
        action_id = _text(body, "action_id")
        block_id = _text(body, "block_id", required=False) or None
        value = body.get("value")
        target: Any
        channel: str | None = None
        if body.get("view_id"):
            target = _text(body, "view_id")
        elif body.get("ephemeral_ts"):
            # The emulator finds an ephemeral by its ts and the user who saw it.
            target = {
                "ts": _text(body, "ephemeral_ts"),
                "user": self.emulator.user_id(user),
                "source": "page",
            }
        else:
            target = _text(body, "ts")
            channel = _text(body, "channel")
        result = await self.emulator.click(
            user, target, action_id, value, channel=channel, block_id=block_id
        )
        return _delivery(result)

    async def _submit(self, body: JSON) -> JSON:
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise ActionError("values must be an object")
        result = await self.emulator.submit_view(
            _text(body, "user"), _text(body, "view_id"), values
        )
        return _delivery(result)

    async def _close(self, body: JSON) -> JSON:
        result = await self.emulator.close_view(_text(body, "user"), _text(body, "view_id"))
        return _delivery(result)

    async def _react(self, body: JSON) -> JSON:
        results = await self.emulator.add_reaction(
            _text(body, "user"), _text(body, "channel"), _text(body, "ts"), _text(body, "name")
        )
        return {"deliveries": [_delivery(r) for r in results]}

    async def _shortcut(self, body: JSON) -> JSON:
        result = await self.emulator.message_shortcut(
            _text(body, "user"),
            _text(body, "channel"),
            _text(body, "ts"),
            callback_id=_text(body, "callback_id", required=False) or self.shortcuts[0][0],
        )
        return _delivery(result)

    async def _home(self, body: JSON) -> JSON:
        return _delivery(await self.emulator.open_home(_text(body, "user")))
