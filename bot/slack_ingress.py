"""What ``/slack/events`` does before Bolt sees a request: read the body under a cap, verify
Slack's signature on the raw bytes, then parse it and check its shape.

The order is the point. Nothing reads an unsigned body: not the parser, not the
metrics labels, not the log context, not Bolt (whose failed-signature message would
log the whole body). An unsigned or stale request is a 401, a body over the cap a
413, a signed body Slack would not send a 400 — each one short JSON line, counted
under a single ``trigger`` label (``unverified`` or ``malformed``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Message

from bot.http_limits import BodyTooLarge, IncompleteBody, read_capped
from bot.metrics import MALFORMED, UNVERIFIED, SlackRequest, describe_slack_payload
from bot.slack_shapes import Malformed, check_shape, kind_of, parse_like_bolt

MAX_SLACK_BODY_BYTES = 1024 * 1024
"""Slack's largest requests (a view submission, an event carrying a long message: 40,000
characters of text and up to 50 blocks, 100 in a modal) are well under 300 KiB; 1 MiB
leaves room and bounds what an unsigned client can make the bot hold in memory."""
SIGNATURE_TOLERANCE_SECONDS = 300
"""Slack's own rule: a request signed more than five minutes from our clock is refused."""


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    trigger: str


@dataclass(frozen=True)
class Admitted:
    body: bytes
    about: SlackRequest


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
        return Admitted(body, describe_slack_payload(kind_of(data), data))

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


def replaying(request: Request, body: bytes) -> Request:
    """``request`` again, its (already read) body served once more, for Bolt's adapter."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)
