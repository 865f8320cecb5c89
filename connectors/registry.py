"""The registry: every named connection built once at start-up, looked up by steps, closed at exit.

::

    registry = ConnectorRegistry.build(settings.connections, env=settings.environment,
                                       hooks=Hooks(on_trip=notify_ops))
    async with registry:
        rows = await registry.sql("erp").query("select …", {"po": po})
        await registry.http("erp").request("POST", "/ledger", json=…, idempotency_key=key)

``build`` validates every configuration and resolves every secret before anything is used, so a
missing environment variable stops start-up with a ``ConnectorConfigError`` naming it instead of
failing the first workflow that needs it. Adding a connector type = one entry in ``BUILDERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from connectors.base import Connector, Hooks
from connectors.config import ConnectionConfig, parse_connections
from connectors.email import EmailConnector
from connectors.errors import ConnectorConfigError
from connectors.github import GithubConnector
from connectors.http import HttpConnector
from connectors.jira import JiraConnector
from connectors.sql import SqlConnector
from connectors.webhook_out import WebhookOutConnector

__all__ = ["BUILDERS", "ConnectorRegistry"]

C = TypeVar("C", bound=Connector)
Builder = Callable[[str, Any, Mapping[str, str], Hooks], Connector]

BUILDERS: dict[str, Builder] = {
    "http": HttpConnector.from_config,
    "sql": SqlConnector.from_config,
    "email": EmailConnector.from_config,
    "jira": JiraConnector.from_config,
    "github": GithubConnector.from_config,
    "webhook_out": WebhookOutConnector.from_config,
}


class ConnectorRegistry:
    """Named connectors of one process; an async context manager that closes them all."""

    def __init__(
        self, connectors: Mapping[str, Connector], total_limits: Mapping[str, int] | None = None
    ) -> None:
        self._connectors = dict(connectors)
        self._total_limits = dict(total_limits or {})

    @classmethod
    def build(
        cls,
        connections: Mapping[str, ConnectionConfig | Mapping[str, Any]],
        env: Mapping[str, str],
        *,
        hooks: Hooks | None = None,
    ) -> ConnectorRegistry:
        """Validate ``{name: config}``, resolve secrets from ``env`` and build every connector."""
        configs = parse_connections(connections)
        # Building opens no sockets (HTTP clients and SQL pools connect lazily), so a failure
        # part-way through leaves nothing that needs closing.
        return cls(
            {
                name: BUILDERS[config.type](name, config, env, hooks or Hooks())
                for name, config in configs.items()
            },
            {
                name: config.max_concurrency_total
                for name, config in configs.items()
                if config.max_concurrency_total is not None
            },
        )

    def total_limit(self, name: str) -> int | None:
        """The connection's limit across all processes (``max_concurrency_total``), if any."""
        return self._total_limits.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._connectors)

    def get(self, name: str) -> Connector:
        try:
            return self._connectors[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise ConnectorConfigError(
                f"no such connection (configured: {known})", connection=name
            ) from None

    def _typed(self, name: str, cls: type[C]) -> C:
        connector = self.get(name)
        if not isinstance(connector, cls):
            raise ConnectorConfigError(
                f"connection is of type {connector.kind!r}, not {cls.kind!r}", connection=name
            )
        return connector

    def http(self, name: str) -> HttpConnector:
        return self._typed(name, HttpConnector)

    def sql(self, name: str) -> SqlConnector:
        return self._typed(name, SqlConnector)

    def email(self, name: str) -> EmailConnector:
        return self._typed(name, EmailConnector)

    def jira(self, name: str) -> JiraConnector:
        return self._typed(name, JiraConnector)

    def github(self, name: str) -> GithubConnector:
        return self._typed(name, GithubConnector)

    def webhook_out(self, name: str) -> WebhookOutConnector:
        return self._typed(name, WebhookOutConnector)

    async def aclose(self) -> None:
        """Close every connector, even when one of them fails to close."""
        errors: list[Exception] = []
        for connector in self._connectors.values():
            try:
                await connector.aclose()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
        if errors:
            raise ExceptionGroup("closing connectors failed", errors)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
