"""The errors every connector raises, so callers can act on them without knowing the backend.

Exceptions::

    ConnectorError                 base; carries ``connection`` and ``retryable``
    ├── ConnectorUnavailable       connect error, timeout, 5xx, 429, SMTP 4xx, DB outage
    │                              (retryable)
    ├── CircuitOpen                the connection's breaker is open: failed fast, nothing sent
    │                              (retryable later; ``retry_after`` says when a probe is allowed)
    ├── ConnectorRejected          the system said no: 4xx other than 429, SQL error,
    │                              read-only violation, SMTP 5xx  (not retryable)
    ├── ConnectorBadResponse       the answer was not what we can use: malformed JSON, a missing
    │                              selected field, an oversized body  (not retryable)
    └── ConnectorConfigError       bad or incomplete configuration, e.g. a secret's environment
                                   variable is not set  (not retryable)

``retryable`` is the contract with the workflow engine: ``True`` means the same call may succeed
later, so the engine may schedule another attempt (honouring ``retry_after`` when set); ``False``
means retrying the same input is pointless and the step should fail or go to a human.

Messages name the connection and what was attempted (method and path, never the query string,
headers or body) and never contain secret values: connectors build them from their own text and
pass anything echoed by the remote side through :func:`redact`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from connectors.secrets import REDACTED, scrub

__all__ = [
    "CircuitOpen",
    "ConnectorBadResponse",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorRejected",
    "ConnectorUnavailable",
    "cert_verify_failure",
    "redact",
]


class ConnectorError(Exception):
    """Base of every error a connector raises; never raised bare."""

    default_retryable = False

    def __init__(self, message: str, *, connection: str, retryable: bool | None = None) -> None:
        super().__init__(f"[{connection}] {message}")
        self.connection = connection
        self.retryable = self.default_retryable if retryable is None else retryable

    def as_dict(self) -> dict[str, object]:
        """A JSON-safe summary for a step's result and the audit trail (never secret)."""
        summary: dict[str, object] = {
            "error": type(self).__name__,
            "connection": self.connection,
            "message": str(self),
            "retryable": self.retryable,
        }
        for extra in ("status_code", "retry_after"):
            value = getattr(self, extra, None)
            if value is not None:
                summary[extra] = value
        return summary


class ConnectorUnavailable(ConnectorError):
    """The remote system could not be reached or is failing; the call may succeed later.

    ``not_processed`` is ``True`` when the remote side certainly did not act on the request
    (connection refused, 429, 503), which makes even a non-idempotent call safe to repeat.
    ``retry_after`` is the delay in seconds the remote side asked for, when it said one.
    """

    default_retryable = True

    def __init__(
        self,
        message: str,
        *,
        connection: str,
        status_code: int | None = None,
        retry_after: float | None = None,
        not_processed: bool = False,
    ) -> None:
        super().__init__(message, connection=connection)
        self.status_code = status_code
        self.retry_after = retry_after
        self.not_processed = not_processed


class CircuitOpen(ConnectorError):
    """The connection's circuit breaker is open: the call failed fast and nothing was sent."""

    default_retryable = True

    def __init__(self, message: str, *, connection: str, retry_after: float) -> None:
        super().__init__(message, connection=connection)
        self.retry_after = retry_after


class ConnectorRejected(ConnectorError):
    """The remote system refused the request as it stands (4xx, SQL error, policy)."""

    def __init__(self, message: str, *, connection: str, status_code: int | None = None) -> None:
        super().__init__(message, connection=connection)
        self.status_code = status_code


class ConnectorBadResponse(ConnectorError):
    """The remote system answered, but not with something we can use."""


class ConnectorConfigError(ConnectorError):
    """The connection's configuration is invalid or incomplete."""


def redact(text: str, secrets: Iterable[str], *, limit: int = 300) -> str:
    """Return ``text`` shortened to ``limit`` characters with every secret masked.

    Used on anything the remote side sends back (error bodies, driver messages) before it goes
    into an exception message, because servers sometimes echo credentials. The product's one
    scrubber does the masking: the connection's own secrets, every secret the process knows
    and credential shapes, all become ``[REDACTED]``.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)  # the connection's own, however short
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cert_verify_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind ``exc``, if that is what failed.

    Clients wrap it (httpx in ``ConnectError``); it is worth finding because an untrusted
    certificate is a configuration problem that no retry fixes.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
