"""The HTTP plumbing under every HTTP-based connector (http, jira, github, webhook_out).

One :class:`HttpTransport` per connection owns one ``httpx.AsyncClient`` (connection pool,
timeouts, default headers) and sends every request through the connection's
:class:`~connectors.resilience.Guard`. It turns transport failures and status codes into the
typed errors of :mod:`connectors.errors`:

=====================================  ===========================================
connect error, connect timeout         ``ConnectorUnavailable(not_processed=True)``
untrusted TLS certificate              ``ConnectorRejected``
read/write timeout, dropped connection ``ConnectorUnavailable``
429, 503                               ``ConnectorUnavailable(not_processed=True)`` + Retry-After
408, other 5xx (not 501/505)           ``ConnectorUnavailable``
3xx (redirects are not followed)       ``ConnectorBadResponse``
other 4xx, 501, 505                    ``ConnectorRejected``
body larger than ``max_response_bytes`` ``ConnectorBadResponse``
URL outside the connection's base URL  ``ConnectorRejected`` (nothing is sent)
=====================================  ===========================================

Every request's final URL is checked by :func:`connectors.urls.check_confined` against the
connection's base URL (``confine_to``, for a webhook its target URL) before it is sent: this
is the one place that keeps every connector's credentials on the connection's own host and
path, whatever a path template, an absolute URL or a ``Link: next`` header says.

Redirects are not followed because a redirect to another host would carry our secret headers
there; point ``base_url`` at the final location instead.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.errors import (
    ConnectorBadResponse,
    ConnectorConfigError,
    ConnectorRejected,
    ConnectorUnavailable,
    cert_verify_failure,
    redact,
)
from connectors.resilience import Guard
from connectors.urls import UrlOutsideBase, check_confined

__all__ = ["IDEMPOTENT_METHODS", "HttpTransport", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_NOT_PROCESSED_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns ``None`` for a missing or unparseable header and never a negative number.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpTransport:
    """A pooled, guarded HTTP client for one named connection."""

    def __init__(
        self,
        name: str,
        *,
        guard: Guard,
        base_url: str = "",
        confine_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        verify: bool = True,
        max_response_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.name = name
        self.guard = guard
        self._timeout_s = timeout_s
        self._max_bytes = max_response_bytes
        root = confine_to if confine_to is not None else base_url
        if not root:
            raise ConnectorConfigError(
                "an HTTP connection needs a base_url (or a target URL) to confine requests to",
                connection=name,
            )
        self._root = httpx.URL(root)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            verify=verify,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._client.base_url

    async def send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request (retried when safe) and return the fully read 2xx response.

        ``idempotent`` defaults to the method's semantics; pass ``True`` for a POST that
        carries an idempotency key the server honours.
        """
        method = method.upper()
        request = self.build_request(
            method, url, params=params, json=json, content=content, headers=headers
        )
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        return await self.guard.call(lambda: self._send_once(request), idempotent=idempotent)

    def build_request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """The request :meth:`send` would send; ``ConnectorRejected`` if it leaves the base URL."""
        request = self._client.build_request(
            method.upper(), url, params=params, json=json, content=content, headers=headers
        )
        try:
            check_confined(self._root, request.url)
        except UrlOutsideBase as exc:
            raise ConnectorRejected(
                f"{request.method}: {redact(str(exc), self.guard.secrets)}", connection=self.name
            ) from None
        return request

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        what = f"{request.method} {request.url.path}"
        try:
            # httpx's timeouts are per socket operation; this bounds the whole attempt, so a
            # server dripping one byte at a time cannot hold a worker forever.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.send(request, stream=True)
                try:
                    body = await self._read_capped(response, what)
                finally:
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            bad_cert = cert_verify_failure(exc)
            if bad_cert is not None:  # no retry makes an untrusted certificate trusted
                raise ConnectorRejected(
                    f"{what}: TLS certificate not trusted ({bad_cert.verify_message})",
                    connection=self.name,
                ) from exc
            raise ConnectorUnavailable(
                f"{what}: cannot connect ({type(exc).__name__})",
                connection=self.name,
                not_processed=True,
            ) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise ConnectorUnavailable(
                f"{what}: timed out after {self._timeout_s}s", connection=self.name
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectorUnavailable(
                f"{what}: transport error ({type(exc).__name__})", connection=self.name
            ) from exc
        # The body is already decoded (gzip, br …); drop the header so it is not decoded twice.
        headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
        full = httpx.Response(response.status_code, headers=headers, content=body, request=request)
        self._raise_for_status(full, what)
        return full

    async def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise ConnectorBadResponse(
                    f"{what}: response larger than {self._max_bytes} bytes", connection=self.name
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 300 or status == 304:
            return
        detail = redact(response.text, self.guard.secrets, limit=200)
        message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
        if (
            status in _NOT_PROCESSED_STATUSES
            or status == 408
            or (status >= 500 and status not in (501, 505))
        ):
            raise ConnectorUnavailable(
                message,
                connection=self.name,
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                not_processed=status in _NOT_PROCESSED_STATUSES,
            )
        if status < 400:
            location = redact(response.headers.get("location", "?"), self.guard.secrets)
            raise ConnectorBadResponse(
                f"{what}: unexpected redirect (HTTP {status}) to {location}; "
                "redirects are not followed, point the connection at the final URL",
                connection=self.name,
            )
        raise ConnectorRejected(message, connection=self.name, status_code=status)

    async def aclose(self) -> None:
        await self._client.aclose()
