"""Slack's v0 request signing, as Slack applies it to every request it sends an app.

``X-Slack-Signature = "v0=" + hex(hmac_sha256(signing_secret, "v0:{ts}:{raw body}"))``
with ``X-Slack-Request-Timestamp = ts`` (Unix seconds). The app recomputes it
and rejects a mismatch or a timestamp more than five minutes off.
"""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v0"


def signature(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def signed_headers(
    signing_secret: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The two headers Slack adds to a request carrying ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(signing_secret, ts, body),
    }


def verify(
    signing_secret: str,
    body: bytes,
    timestamp: str,
    sig: str,
    now: float | None = None,
    tolerance: int = 300,
) -> bool:
    """True when ``sig`` signs ``body`` and ``timestamp`` is within ``tolerance`` seconds."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    return hmac.compare_digest(signature(signing_secret, ts, body), sig)
