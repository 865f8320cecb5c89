"""What every connector shares: the ``Connector`` protocol and the builders of its plumbing.

A connector module is thin: a class with the actions it offers (``request``, ``query``,
``send``, ``create_issue`` …), an ``aclose``, and a ``from_config`` that uses
:func:`make_guard` and :func:`make_transport` below to get its breaker, concurrency limit,
retries and (for HTTP) its pooled client, all configured from the connection's model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from opentelemetry import trace

from connectors.config import BaseUrlConfig, CommonConfig, HttpCommonConfig, resolve_secret
from connectors.errors import ConnectorConfigError
from connectors.resilience import CallHook, CircuitBreaker, Guard, RecoverHook, TripHook
from connectors.transport import HttpTransport

__all__ = [
    "Connector",
    "Hooks",
    "IssueRef",
    "make_guard",
    "make_transport",
    "resolve_base_url",
]


@runtime_checkable
class Connector(Protocol):
    """The part of every connector the registry relies on."""

    name: str
    kind: str

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class IssueRef:
    """A ticket or comment created in a tracker (Jira, GitHub): what a step stores and links."""

    key: str
    """Human key: ``OPS-12``, ``acme/app#34``; for a comment, its id."""
    id: str
    url: str
    """Where a person opens it in a browser."""


@dataclass(frozen=True)
class Hooks:
    """Callbacks the embedding application passes to every connection's breaker and guard."""

    on_trip: TripHook | None = None
    on_recover: RecoverHook | None = None
    on_call: CallHook | None = None
    """Every call's connection, kind, outcome and seconds (``bot/metrics.py`` counts them)."""
    clock: Callable[[], float] | None = field(default=None)
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    """A span per call (``bot/tracing.py``), a child of the step's span."""


def make_guard(
    name: str, config: CommonConfig, hooks: Hooks, *, secrets: tuple[str, ...] = ()
) -> Guard:
    breaker_kwargs = {} if hooks.clock is None else {"clock": hooks.clock}
    breaker = CircuitBreaker(
        name,
        config.breaker,
        on_trip=hooks.on_trip,
        on_recover=hooks.on_recover,
        **breaker_kwargs,
    )
    return Guard(
        name,
        retry=config.retry,
        breaker=breaker,
        max_concurrency=config.max_concurrency,
        secrets=secrets,
        kind=str(getattr(config, "type", "")),  # each connection model names its kind
        on_call=hooks.on_call,
        tracer=hooks.tracer,
    )


def resolve_base_url(name: str, config: BaseUrlConfig, env: Mapping[str, str]) -> str:
    if config.base_url_env:
        url = resolve_secret(env, config.base_url_env, connection=name, field="base_url_env")
        return url.get_secret_value()
    if config.base_url:
        return config.base_url
    raise ConnectorConfigError("base_url or base_url_env is required", connection=name)


def make_transport(
    name: str,
    config: HttpCommonConfig,
    env: Mapping[str, str],
    hooks: Hooks,
    *,
    base_url: str = "",
    confine_to: str | None = None,
    auth_headers: Mapping[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> HttpTransport:
    """Build the connection's guarded client.

    ``auth_headers`` are secret headers the connector derived itself (a bearer token); the
    configured ``secret_headers`` are resolved here. Their values and ``secrets`` (raw tokens
    behind derived headers) are masked in error messages. Every request stays under
    ``confine_to`` (default ``base_url``): see :mod:`connectors.urls`.
    """
    secret_headers = dict(auth_headers or {})
    for header, variable in config.secret_headers.items():
        value = resolve_secret(env, variable, connection=name, field=f"secret_headers.{header}")
        secret_headers[header] = value.get_secret_value()
    guard = make_guard(name, config, hooks, secrets=(*secret_headers.values(), *secrets))
    return HttpTransport(
        name,
        guard=guard,
        base_url=base_url,
        confine_to=confine_to,
        headers={**config.headers, **secret_headers},
        timeout_s=config.timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        verify=config.verify_tls,
        max_response_bytes=config.max_response_bytes,
    )
