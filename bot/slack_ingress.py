"""What ``/slack/events`` does before Bolt sees a request: read the body under a cap, verify
Slack's signature on the raw bytes, then parse it and check its shape.

The order is the point. Nothing reads an unsigned body: not the parser, not the
metrics labels, not the log context, not Bolt (whose failed-signature message would
log the whole body). An unsigned or stale request is a 401, a body over the cap a
413, a signed body Slack would not send a 400 — each one short JSON line, counted
under a single ``trigger`` label (``unverified`` or ``malformed``).

What ``admit`` parsed is what Bolt gets (``dispatch``): the body is parsed once and its
signature checked once per request, as in a bare Bolt app (issue 24).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import (
    build_normalized_headers,
    extract_content_type,
    parse_query,
)
from starlette.requests import Request
from starlette.responses import Response

from bot.http_limits import BodyTooLarge, IncompleteBody, read_capped
from bot.slack_shapes import Malformed, Payload, check_shape, kind_of, parse_like_bolt

MAX_SLACK_BODY_BYTES = 1024 * 1024
"""Slack's largest requests (a view submission, an event carrying a long message: 40,000
characters of text and up to 50 blocks, 100 in a modal) are well under 300 KiB; 1 MiB
leaves room and bounds what an unsigned client can make the bot hold in memory."""
SIGNATURE_TOLERANCE_SECONDS = 300
"""Slack's own rule: a request signed more than five minutes from our clock is refused."""


_LABEL = re.compile(r"^[a-z_]{1,40}$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")


@dataclass(frozen=True)
class SlackRequest:
    """What a request to /slack/events is, for metric labels and log context."""

    trigger: str
    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None


UNVERIFIED = "unverified"
"""The one trigger label of every request whose signature was not verified (or that was
too large to verify): what an unsigned body says is never a label or a log id."""
MALFORMED = "malformed"
"""The trigger label of signed requests refused for their shape."""


def describe_slack_payload(kind: str, data: Mapping[str, Any]) -> SlackRequest:
    """Labels and log ids of a *verified* request: ``command``, an interaction type
    (``block_actions`` …), ``event.<type>`` or ``url_verification``; ``other`` otherwise."""
    if kind == "command":
        return SlackRequest(
            "command",
            _id(data.get("team_id")),
            _id(data.get("channel_id")),
            _id(data.get("user_id")),
        )
    if kind == "event_callback":
        event = data.get("event")
        event = event if isinstance(event, Mapping) else {}
        return SlackRequest(
            f"event.{_bounded(event.get('type'))}",
            _id(data.get("team_id")),
            _id(event.get("channel")),
            _id(event.get("user")),
        )
    return SlackRequest(
        _bounded(kind),
        _id(_field(data.get("team"), "id")),
        _id(_field(data.get("channel"), "id")),
        _id(_field(data.get("user"), "id")),
    )


def _field(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _id(value: Any) -> str | None:
    """A Slack id for log context (``T0123ABC``), or None: never free text from a body."""
    return value if isinstance(value, str) and _SLACK_ID.match(value) else None


def _bounded(value: Any) -> str:
    """A label value from Slack's vocabulary, or ``other``: labels must stay a small set."""
    return value if isinstance(value, str) and _LABEL.match(value) else "other"


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    trigger: str


@dataclass(frozen=True)
class Admitted:
    body: bytes
    about: SlackRequest
    payload: Payload
    """The body as Bolt parses it, parsed once here and handed to Bolt (``dispatch``)."""


class SlackIngress:
    def __init__(self, signing_secret: str, now: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self._now = now

    async def admit(self, request: Request) -> Admitted | Refusal:
        try:
            body = await read_capped(request, MAX_SLACK_BODY_BYTES)
        except BodyTooLarge as exc:
            return Refusal(413, str(exc), UNVERIFIED)
        except IncompleteBody as exc:
            return Refusal(400, str(exc), UNVERIFIED)
        if not self.signed(request.headers, body):
            return Refusal(401, "invalid or missing Slack signature", UNVERIFIED)
        try:
            data = parse_like_bolt(body.decode("utf-8"), request.headers.get("content-type", ""))
            check_shape(data)
        except UnicodeDecodeError:
            return Refusal(400, "body is not UTF-8", MALFORMED)
        except Malformed as exc:
            return Refusal(400, str(exc), MALFORMED)
        return Admitted(body, describe_slack_payload(kind_of(data), data), data)

    def signed(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Slack's v0 scheme over the raw bytes, compared in constant time."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        # Headers are decoded as latin-1: "²" passes str.isdigit() but not int().
        if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
            return False
        if abs(self._now() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
            return False
        base = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode())


class ParsedBoltRequest(AsyncBoltRequest):
    """Bolt's request from a body already read, verified and parsed by ``admit``.

    ``AsyncBoltRequest.__init__`` in HTTP mode parses the raw body again; this sets the
    same attributes with the parse done (the raw body stays, for ``to_copyable``).
    """

    def __init__(self, request: Request, admitted: Admitted) -> None:
        self.raw_body = admitted.body.decode("utf-8")
        self.query = parse_query(request.url.query or None)
        self.headers = build_normalized_headers(request.headers)  # type: ignore[arg-type]
        self.content_type = extract_content_type(self.headers)
        self.body = admitted.payload
        self.context = build_async_context(AsyncBoltContext({}), self.body)
        self.lazy_only = bool(self.headers.get("x-slack-bolt-lazy-only", [False])[0])
        self.lazy_function_name = self.headers.get("x-slack-bolt-lazy-function-name", [None])[0]
        self.mode = "http"


async def dispatch(app: AsyncApp, request: Request, admitted: Admitted) -> Response:
    """What Bolt's Starlette adapter does for a POST, without reading or parsing again."""
    return to_starlette_response(await app.async_dispatch(ParsedBoltRequest(request, admitted)))
