"""The HTTP surface of the emulator: Slack's Web API, response_url and upload URLs.

``POST|GET /api/{method}`` takes arguments from the query string and a
form-encoded or JSON body, authenticates the bot token (header or ``token``
argument), applies injected faults and per-method rate limits (429 +
``Retry-After`` like Slack: sliding one-minute windows by default, token buckets paced
like Slack with ``rate_limits="realistic"``), runs the method and records the call.
``POST /response/{id}`` is the response_url Slack hands out with commands and
actions; ``POST /upload/v1/{file_id}`` receives file bytes for
``files.getUploadURLExternal``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .methods import ApiError, Args, Methods
from .records import JSON
from .state import Workspace

RESPONSE_URL_TTL_SECONDS = 30 * 60
RESPONSE_URL_MAX_USES = 5

TIER_2, TIER_3, TIER_4 = 20, 50, 100
# Requests per minute per method, after Slack's published tiers. chat.postMessage
# is "about one per second per channel, short bursts allowed": a 60/min window per channel.
DEFAULT_RATE_LIMITS: dict[str, int] = {
    "api.test": TIER_4,
    "auth.test": TIER_4,
    "chat.postMessage": 60,
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": TIER_4,
    "conversations.list": TIER_2,
    "conversations.info": TIER_3,
    "conversations.history": TIER_3,
    "conversations.replies": TIER_3,
    "conversations.members": TIER_4,
    "conversations.open": TIER_3,
    "conversations.join": TIER_3,
    "users.info": TIER_4,
    "users.list": TIER_2,
    "users.lookupByEmail": TIER_3,
    "usergroups.list": TIER_2,
    "usergroups.users.list": TIER_2,
    "reactions.add": TIER_3,
    "reactions.get": TIER_3,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
}
PER_CHANNEL_LIMITED = frozenset({"chat.postMessage"})
REALISTIC = "realistic"
"""``rate_limits=REALISTIC``: Slack's pacing as a token bucket per method (``RealisticLimiter``)."""
POST_BURST = 5
"""Posts one channel takes at once before about one a second (Slack: "short bursts")."""


ACCEPTED = "accepted"
TokenGuard = Callable[[str, str, dict[str, Any]], str | None]


@dataclass
class ApiCall:
    """One recorded Web API call (the token is never recorded)."""

    method: str
    args: JSON
    status: int
    response: JSON
    at: float
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        err = self.response.get("error")
        return str(err) if err is not None else None


@dataclass(frozen=True)
class Fault:
    """A scripted failure for the next call of a method (see ``inject_faults``)."""

    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Fault:
        return cls(status=429, error="ratelimited", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(
            status=status, error="internal_error" if status == 500 else "service_unavailable"
        )

    @classmethod
    def api_error(cls, error: str) -> Fault:
        return cls(status=200, error=error)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds``."""
        return cls(delay=seconds)

    @classmethod
    def coerce(cls, spec: Fault | int | str) -> Fault:
        """429 → rate limited (Retry-After 1); 500/503 → server error; "code" → API error."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, int):
            return cls.rate_limited() if spec == 429 else cls.server_error(spec)
        return cls.api_error(spec)


class RateLimiter:
    """Sliding one-minute windows per method (and per channel where Slack does that)."""

    def __init__(self, limits: Mapping[str, int] | None, window: float = 60.0) -> None:
        self.limits: dict[str, int] = dict(limits or {})
        self.window = window
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, method: str, key: str = "") -> int | None:
        """Record a call; return the Retry-After seconds instead when over the limit."""
        limit = self.limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        hits = self._hits.setdefault((method, key), deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(self.window - (now - hits[0])))
        hits.append(now)
        return None


class RealisticLimiter:
    """Slack's limits as Slack paces them: a token bucket per method (and per channel for
    ``chat.postMessage``) refilled at the per-minute limit, so a burst is absorbed and then
    calls pass at the steady rate. ``chat.postMessage``: ``POST_BURST`` at once, then one a
    second per channel; a Tier method (per workspace): a sixth of its minute at once (ten
    seconds' worth), then its rate. ``limits`` stays per minute, like ``RateLimiter``'s."""

    def __init__(self, limits: Mapping[str, int] | None = None) -> None:
        self.limits: dict[str, int] = dict(DEFAULT_RATE_LIMITS if limits is None else limits)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def _shape(self, method: str, per_minute: int) -> tuple[float, float]:
        """(burst, tokens per second)."""
        if method in PER_CHANNEL_LIMITED:
            return float(min(POST_BURST, per_minute)), per_minute / 60.0
        return max(1.0, per_minute / 6.0), per_minute / 60.0

    def check(self, method: str, key: str = "") -> int | None:
        limit = self.limits.get(method)
        if limit is None:
            return None
        burst, rate = self._shape(method, limit)
        now = time.monotonic()
        tokens, stamp = self._buckets.get((method, key), (burst, now))
        tokens = min(burst, tokens + (now - stamp) * rate)
        if tokens < 1:
            self._buckets[(method, key)] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rate))
        self._buckets[(method, key)] = (tokens - 1, now)
        return None


class WebApi:
    """Serves the Web API for one workspace; see the module docstring."""

    def __init__(
        self,
        ws: Workspace,
        methods: Methods,
        bot_token: str,
        rate_limits: Mapping[str, int] | str | None,
        on_call: Callable[[ApiCall], None] | None = None,
    ) -> None:
        self.ws = ws
        self.methods = methods
        self.bot_token = bot_token
        self.rate_limiter: RateLimiter | RealisticLimiter = (
            RealisticLimiter()
            if rate_limits == REALISTIC
            else RateLimiter(rate_limits if not isinstance(rate_limits, str) else None)
        )
        self.calls: list[ApiCall] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.on_call = on_call
        self.learned_base_url: str | None = None
        self.token_guards: list[TokenGuard] = []
        """Other tokens' rules (``sandbox/slack/functions.py``: Workflow Builder tokens)."""
        self.authenticate: Callable[[str], str | None] | None = None
        """Set by ``sandbox/slack/oauth.py`` (tokens issued by an install): token -> the error
        code refusing it, or None. Unset: only ``bot_token`` is accepted."""

    def _refused(self, token: str, method: str, args: dict[str, Any]) -> str | None:
        """Slack's error for this token on this call; None: allowed. A guard says
        ``ACCEPTED``, an error code, or None (no opinion); else installs' tokens
        (``authenticate``) or only the bot token pass."""
        verdicts = [guard(token, method, args) for guard in self.token_guards]
        errors = [v for v in verdicts if v and v != ACCEPTED]
        if errors:
            return errors[0]
        if ACCEPTED in verdicts:
            return None
        if self.authenticate is not None:
            return self.authenticate(token)
        return None if token == self.bot_token else "invalid_auth"

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/api/{method}", self.api, methods=["GET", "POST"]),
            Route("/response/{rid}", self.response_url, methods=["POST"]),
            Route("/upload/v1/{fid}", self.upload, methods=["POST", "PUT"]),
        ]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes)

    # ------------------------------------------------------------------ faults

    def inject_faults(self, method: str, faults: Iterable[Fault | int | str]) -> None:
        self.faults.setdefault(method, deque()).extend(Fault.coerce(f) for f in faults)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ /api

    @staticmethod
    async def _args(request: Request) -> dict[str, Any]:
        values: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        if body:
            if ctype.startswith("application/json"):
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise ApiError("invalid_json") from None
                if not isinstance(parsed, dict):
                    raise ApiError("invalid_json")
                values.update(parsed)
            elif ctype.startswith("application/x-www-form-urlencoded") or not ctype:
                values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                raise ApiError("invalid_form_data")
        return values

    def _token(self, request: Request, args: dict[str, Any]) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        token = args.get("token")
        return str(token) if token else None

    def _record(
        self, method: str, args: dict[str, Any], status: int, body: JSON, headers: dict[str, str]
    ) -> None:
        call = ApiCall(
            method=method, args=args, status=status, response=body, at=time.time(), headers=headers
        )
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)

    def _reply(
        self,
        method: str,
        args: dict[str, Any],
        body: JSON,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        hdrs = dict(headers or {})
        self._record(method, args, status, body, hdrs)
        return JSONResponse(body, status_code=status, headers=hdrs)

    async def api(self, request: Request) -> Response:
        method = request.path_params["method"]
        url = str(request.url)
        self.learned_base_url = (
            url[: url.rfind("/api/")] if "/api/" in url else self.learned_base_url
        )
        try:
            raw = await self._args(request)
        except ApiError as exc:
            return self._reply(method, {}, {"ok": False, "error": exc.error})
        token = self._token(request, raw)
        args = {k: v for k, v in raw.items() if k != "token"}
        if token is None:
            return self._reply(method, args, {"ok": False, "error": "not_authed"})
        refused = self._refused(token, method, args)
        if refused is not None:
            return self._reply(method, args, {"ok": False, "error": refused})
        handler = self.methods.table.get(method)
        if handler is None:
            return self._reply(
                method, args, {"ok": False, "error": "unknown_method", "req_method": method}
            )

        queue = self.faults.get(method)
        fault = queue.popleft() if queue else None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status != 200 or fault.error:
                headers = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                body: JSON = {"ok": False, "error": fault.error or "internal_error"}
                return self._reply(method, args, body, fault.status, headers)

        key = ""
        if method in PER_CHANNEL_LIMITED:
            # "#general" and its id are the same channel for the limit.
            ref = str(args.get("channel", ""))
            found = self.ws.find_channel(ref)
            key = found.id if found is not None else ref
        retry_after = self.rate_limiter.check(method, key)
        if retry_after is not None:
            return self._reply(
                method,
                args,
                {"ok": False, "error": "ratelimited"},
                429,
                {"Retry-After": str(retry_after)},
            )

        self.methods.upload_base = self.learned_base_url or ""
        try:
            result = handler(Args(args))
        except ApiError as exc:
            return self._reply(method, args, {"ok": False, "error": exc.error, **exc.extra})
        return self._reply(method, args, {"ok": True, **result})

    # ------------------------------------------------------------------ response_url

    async def response_url(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        ru = self.ws.response_urls.get(rid)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        record_args: JSON = body if isinstance(body, dict) else {}
        if ru is None:
            return self._hook_reply(rid, record_args, 404, "invalid_url")
        if time.monotonic() - ru.issued_at > RESPONSE_URL_TTL_SECONDS:
            return self._hook_reply(rid, record_args, 404, "expired_url")
        if ru.uses >= RESPONSE_URL_MAX_USES:
            return self._hook_reply(rid, record_args, 404, "used_url")
        if not isinstance(body, dict):
            return self._hook_reply(rid, record_args, 400, "invalid_payload")
        ru.uses += 1
        try:
            self.methods.respond(ru, body)
        except ApiError as exc:
            return self._hook_reply(rid, record_args, 400, exc.error)
        return self._hook_reply(rid, record_args, 200, None)

    def _hook_reply(self, rid: str, args: JSON, status: int, error: str | None) -> Response:
        body: JSON = {"ok": error is None}
        if error is not None:
            body["error"] = error
        self._record("response_url", {"response_url_id": rid, **args}, status, body, {})
        return JSONResponse(body, status_code=status)

    # ------------------------------------------------------------------ uploads

    async def upload(self, request: Request) -> Response:
        fid = request.path_params["fid"]
        f = self.ws.files.get(fid)
        if f is None or f.completed:
            return PlainTextResponse("invalid_upload_url", status_code=404)
        # slack_sdk sends the raw bytes as the body (no multipart wrapping).
        data = await request.body()
        f.content = data
        self._record("upload", {"file_id": fid, "bytes": len(data)}, 200, {"ok": True}, {})
        return PlainTextResponse(f"OK - {len(data)}")
