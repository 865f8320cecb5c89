"""Resilience for one connection: circuit breaker, concurrency limit and tenacity retries.

Every connector sends each remote call through its connection's :class:`Guard`::

    result = await guard.call(lambda: send_once(), idempotent=method in {"GET", "PUT", ...})

One attempt = ask the breaker (fail fast with ``CircuitOpen`` while it is open), take a slot of
the connection's ``asyncio.Semaphore``, run the operation once. Tenacity repeats attempts that
raised ``ConnectorUnavailable`` with exponential back-off and jitter, but only when repeating is
safe: the call is idempotent, or the remote side certainly did not process it
(``not_processed``: connection refused, 429, 503). A ``Retry-After`` the server sent replaces
the back-off; one longer than ``max_retry_after_s`` is not slept on in process but raised, so
the engine can schedule a durable retry instead of parking a worker.

Limits are per process. The semaphore bounds this process's in-flight calls to a connection;
a limit shared by all workers (a vendor's global rate limit) is the workflow engine's job, which
sees every process through its database.

Why a small hand-written breaker rather than a library: the well-known ones (pybreaker,
aiobreaker, purgatory) are either synchronous at heart, unmaintained, or bring their own storage
and listener frameworks; we need about eighty lines of asyncio-only state machine whose failures
are our typed errors, whose clock tests can drive, and which reports a trip exactly once.

States: ``closed`` (calls flow; ``failure_threshold`` consecutive failures trip it) → ``open``
(calls fail fast for ``reset_timeout_s``) → ``half_open`` (one probe call is let through;
success closes it, failure re-opens it). ``on_trip`` runs once per outage, on closed → open, not
again when a probe fails; ``on_recover`` runs on half_open → closed. Only
``ConnectorUnavailable`` other than 429 counts as a failure: a 4xx or a rate limit proves the
remote side is up.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from connectors.config import BreakerSettings, RetrySettings
from connectors.errors import (
    CircuitOpen,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorRejected,
    ConnectorUnavailable,
)

__all__ = ["BreakerState", "CallHook", "CircuitBreaker", "Guard", "RecoverHook", "TripHook"]

log = logging.getLogger("connectors")
T = TypeVar("T")

TripHook = Callable[[str, ConnectorError], None]
"""Called with (connection name, the error that tripped it). Runs on the calling task: be quick
and do not raise (schedule a Slack post, bump a metric)."""
RecoverHook = Callable[[str], None]
CallHook = Callable[[str, str, str, float], None]
"""Called once per ``Guard.call`` (retries included) with (connection name, connector kind,
outcome, seconds). Outcome is ``ok`` or one of :data:`OUTCOMES`' values; same rules as above."""

OUTCOMES: tuple[tuple[type[ConnectorError], str], ...] = (
    (CircuitOpen, "circuit_open"),
    (ConnectorUnavailable, "unavailable"),
    (ConnectorRejected, "rejected"),
    (ConnectorBadResponse, "bad_response"),
)
"""A failed call's outcome by error class (first match); anything else is ``error``."""


def outcome_of(exc: BaseException) -> str:
    return next((name for cls, name in OUTCOMES if isinstance(exc, cls)), "error")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one connection (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        on_trip: TripHook | None = None,
        on_recover: RecoverHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings or BreakerSettings()
        self._on_trip = on_trip
        self._on_recover = on_recover
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._remaining() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def _remaining(self) -> float:
        return self._opened_at + self.settings.reset_timeout_s - self._clock()

    def acquire(self) -> bool:
        """Admit one call or raise ``CircuitOpen``; return whether the call is the probe."""
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = True
            return True
        raise CircuitOpen(
            f"circuit open after {self._failures} consecutive failures; failing fast",
            connection=self.name,
            retry_after=max(self._remaining(), 0.0),
        )

    def record_success(self, probe: bool) -> None:
        if probe:
            self._probe_in_flight = False
            self._state = BreakerState.CLOSED
            self._failures = 0
            if self._on_recover is not None:
                self._on_recover(self.name)
        elif self._state is BreakerState.CLOSED:
            self._failures = 0

    def record_failure(self, error: ConnectorError, probe: bool) -> None:
        self._failures += 1
        if probe:
            self._probe_in_flight = False
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
        elif (
            self._state is BreakerState.CLOSED and self._failures >= self.settings.failure_threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            log.warning("connection %s: circuit opened: %s", self.name, error)
            if self._on_trip is not None:
                self._on_trip(self.name, error)

    def release(self, probe: bool) -> None:
        """The admitted call ended without a verdict (cancelled, a bug): let another probe go."""
        if probe:
            self._probe_in_flight = False


def _counts_as_outage(exc: BaseException) -> bool:
    return isinstance(exc, ConnectorUnavailable) and exc.status_code != 429


class _WaitRetryAfterOrBackoff(wait_base):
    """Sleep what the server asked for (Retry-After), else exponential back-off with jitter."""

    def __init__(self, settings: RetrySettings) -> None:
        self._backoff = wait_exponential_jitter(
            multiplier=settings.backoff_initial_s,
            max=settings.backoff_max_s,
            jitter=settings.jitter_s,
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, ConnectorUnavailable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(retry_state))


class Guard:
    """Breaker + semaphore + retries for one connection; shared by all its calls."""

    def __init__(
        self,
        name: str,
        *,
        retry: RetrySettings,
        breaker: CircuitBreaker,
        max_concurrency: int,
        secrets: Iterable[str] = (),
        kind: str = "",
        on_call: CallHook | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self._on_call = on_call
        self._tracer = tracer or trace.NoOpTracer()
        self.retry = retry
        self.breaker = breaker
        self.secrets = tuple(s for s in secrets if s)
        self._semaphore = asyncio.Semaphore(max_concurrency)

    async def call(self, op: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """Run ``op`` under the breaker and the concurrency limit, retrying when safe.

        The call's outcome and time (retries and back-off included) go to ``on_call``.
        """
        attributes = {"switchboard.connection": self.name, "switchboard.connector": self.kind}
        with self._tracer.start_as_current_span(f"connector {self.kind}", attributes=attributes):
            started = time.perf_counter()
            try:
                result = await self._call(op, idempotent=idempotent)
            except Exception as exc:  # cancellation is not a call's outcome: not reported
                self._report(outcome_of(exc), started)
                raise
            self._report("ok", started)
            return result

    def _report(self, outcome: str, started: float) -> None:
        span = trace.get_current_span()
        span.set_attribute("switchboard.outcome", outcome)
        if outcome != "ok":
            span.set_status(StatusCode.ERROR, outcome)
        if self._on_call is not None:
            self._on_call(self.name, self.kind, outcome, time.perf_counter() - started)

    async def _call(self, op: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, ConnectorUnavailable):
                return False
            if exc.retry_after is not None and exc.retry_after > self.retry.max_retry_after_s:
                return False
            return idempotent or exc.not_processed

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=_WaitRetryAfterOrBackoff(self.retry),
            retry=retry_if_exception(should_retry),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return await retrying(self._attempt, op)

    async def _attempt(self, op: Callable[[], Awaitable[T]]) -> T:
        probe = self.breaker.acquire()
        verdict = False
        try:
            async with self._semaphore:
                result = await op()
            verdict = True
            self.breaker.record_success(probe)
            return result
        except ConnectorError as exc:
            verdict = True
            if _counts_as_outage(exc):
                self.breaker.record_failure(exc, probe)
            else:
                self.breaker.record_success(probe)
            raise
        finally:
            if not verdict:
                self.breaker.release(probe)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "connection %s: attempt %d failed (%s); retrying in %.2fs",
            self.name,
            state.attempt_number,
            exc,
            delay,
        )
