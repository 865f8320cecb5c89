"""The outgoing webhook connector: a JSON POST signed with HMAC-SHA256.

The receiver checks two headers::

    X-Switchboard-Timestamp: 1718000000                 (Unix seconds)
    X-Switchboard-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

``body`` is the exact bytes sent (compact JSON, UTF-8). Signing the timestamp with the body lets
the receiver reject replays older than a few minutes; :func:`verify` does both checks and is what
a Python receiver (or our tests) should use. With ``idempotency_key`` the POST also carries
``Idempotency-Key`` and becomes safe to retry in process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connectors.base import Hooks, make_transport
from connectors.config import WebhookOutConfig, resolve_secret
from connectors.http import HttpResult, decode_body
from connectors.transport import HttpTransport

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookOutConnector",
    "sign",
    "verify",
]

TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Switchboard-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Check a received signature in constant time and that the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)


class WebhookOutConnector:
    kind = "webhook_out"

    def __init__(
        self,
        name: str,
        transport: HttpTransport,
        url: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.transport = transport
        self._url = url
        self._secret = secret
        self._clock = clock

    def __repr__(self) -> str:  # the URL may itself be a credential (…/hooks/T0/B0/xyz)
        return f"<WebhookOutConnector {self.name!r}>"

    @classmethod
    def from_config(
        cls, name: str, config: WebhookOutConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> WebhookOutConnector:
        secret = resolve_secret(env, config.secret_env, connection=name, field="secret_env")
        secrets: tuple[str, ...] = (secret.get_secret_value(),)
        if config.url_env:
            url = resolve_secret(env, config.url_env, connection=name, field="url_env")
            target = url.get_secret_value()
            secrets += (target, httpx.URL(target).path)
        else:
            target = config.url or ""
        transport = make_transport(
            name, config, env, hooks or Hooks(), confine_to=target, secrets=secrets
        )
        return cls(name, transport, target, secret.get_secret_value())

    async def post(
        self,
        payload: Any,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """POST ``payload`` as signed JSON; raise a ``ConnectorError`` unless 2xx."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(self._clock())
        all_headers = {
            **(headers or {}),
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        response = await self.transport.send(
            "POST",
            self._url,
            content=body,
            headers=all_headers,
            idempotent=idempotency_key is not None,
        )
        return HttpResult(
            response.status_code, dict(response.headers), decode_body(response, self.name)
        )

    async def aclose(self) -> None:
        await self.transport.aclose()
