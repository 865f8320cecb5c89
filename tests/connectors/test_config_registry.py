"""Configuration models, secret resolution, the registry, and the breaker's state machine."""

from __future__ import annotations

import pytest

from connectors.config import BreakerSettings, HttpConfig, SqlConfig, parse_connections
from connectors.errors import CircuitOpen, ConnectorConfigError, ConnectorUnavailable
from connectors.http import HttpConnector
from connectors.jsonpath import PathNotFound, select
from connectors.registry import ConnectorRegistry
from connectors.resilience import BreakerState, CircuitBreaker
from tests.connectors.conftest import FakeApi, state_of

RAW = {
    "erp": {"type": "http", "base_url": "https://erp.example/api", "token_env": "ERP_TOKEN"},
    "wh": {"type": "sql", "url": "sqlite+aiosqlite:///:memory:"},
    "mail": {"type": "email", "host": "smtp.example", "from_addr": "bot@example.com"},
    "tickets": {"type": "jira", "base_url_env": "JIRA_URL", "token_env": "JIRA_TOKEN"},
    "gh": {"type": "github", "token_env": "GH_TOKEN", "repo": "acme/app"},
    "hook": {"type": "webhook_out", "url": "https://h.example/in", "secret_env": "HOOK_SECRET"},
}
ENV = {
    "ERP_TOKEN": "erp-s3cret",
    "JIRA_URL": "https://acme.atlassian.example",
    "JIRA_TOKEN": "jira-s3cret",
    "GH_TOKEN": "gh-s3cret",
    "HOOK_SECRET": "hook-s3cret",
}


async def test_registry_builds_every_type_and_hands_out_typed_connectors() -> None:
    async with ConnectorRegistry.build(RAW, ENV) as registry:
        assert registry.names == ["erp", "gh", "hook", "mail", "tickets", "wh"]
        assert isinstance(registry.http("erp"), HttpConnector)
        assert registry.sql("wh").kind == "sql"
        assert registry.jira("tickets").kind == "jira"
        assert registry.github("gh").repo == "acme/app"
        assert registry.email("mail").kind == "email"
        assert registry.webhook_out("hook").kind == "webhook_out"
        with pytest.raises(ConnectorConfigError, match="of type 'http', not 'sql'"):
            registry.sql("erp")
        with pytest.raises(ConnectorConfigError, match=r"no such connection \(configured: erp"):
            registry.get("crm")


def test_missing_secret_names_the_variable_and_connection() -> None:
    env = {k: v for k, v in ENV.items() if k != "JIRA_TOKEN"}
    with pytest.raises(ConnectorConfigError) as info:
        ConnectorRegistry.build(RAW, env)
    assert info.value.connection == "tickets"
    assert "JIRA_TOKEN" in str(info.value) and "token_env" in str(info.value)
    assert not info.value.retryable


def test_invalid_config_names_the_field_without_echoing_values() -> None:
    with pytest.raises(ConnectorConfigError, match="tokn_env") as info:
        parse_connections(
            {"erp": {"type": "http", "base_url": "https://x", "tokn_env": "sk-live-1"}}
        )
    assert "sk-live-1" not in str(info.value)
    with pytest.raises(ConnectorConfigError, match="type"):
        parse_connections({"x": {"type": "ftp"}})
    with pytest.raises(ConnectorConfigError, match="base_url or base_url_env is required"):
        parse_connections({"x": {"type": "http"}})
    with pytest.raises(ConnectorConfigError, match="must not contain a password"):
        parse_connections({"x": {"type": "http", "base_url": "https://u:pw@erp.example"}})


def test_secrets_do_not_show_in_reprs() -> None:
    connector = HttpConnector.from_config(
        "erp", HttpConfig(base_url="https://erp.example", token_env="ERP_TOKEN"), ENV
    )
    config = SqlConfig(url="sqlite+aiosqlite:///:memory:")
    for text in (repr(connector), repr(connector.transport.guard), repr(config)):
        assert "erp-s3cret" not in text


async def test_aclose_closes_http_clients(api: FakeApi) -> None:
    registry = ConnectorRegistry.build(
        {"erp": {"type": "http", "base_url": api.base_url, "token_env": "ERP_TOKEN"}}, ENV
    )
    erp = registry.http("erp")
    await erp.request("GET", "/ping")
    await registry.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await erp.request("GET", "/ping")


def test_breaker_state_machine_with_a_driven_clock() -> None:
    now = [0.0]
    trips: list[str] = []
    recovered: list[str] = []
    breaker = CircuitBreaker(
        "erp",
        BreakerSettings(failure_threshold=2, reset_timeout_s=10),
        on_trip=lambda name, _e: trips.append(name),
        on_recover=recovered.append,
        clock=lambda: now[0],
    )
    boom = ConnectorUnavailable("down", connection="erp")

    breaker.record_failure(boom, breaker.acquire())
    breaker.record_success(breaker.acquire())  # a success resets the count
    breaker.record_failure(boom, breaker.acquire())
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_failure(boom, breaker.acquire())
    assert state_of(breaker) is BreakerState.OPEN and trips == ["erp"]
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_after == 10

    now[0] = 10.0
    assert state_of(breaker) is BreakerState.HALF_OPEN
    probe = breaker.acquire()
    assert probe
    with pytest.raises(CircuitOpen):  # only one probe at a time
        breaker.acquire()
    breaker.record_failure(boom, probe)
    assert state_of(breaker) is BreakerState.OPEN and trips == ["erp"]

    now[0] = 25.0
    probe = breaker.acquire()
    breaker.release(probe)  # cancelled probe: another may go
    probe = breaker.acquire()
    breaker.record_success(probe)
    assert state_of(breaker) is BreakerState.CLOSED and recovered == ["erp"]


def test_json_path_subset() -> None:
    doc = {"data": {"items": [{"id": 1}, {"id": 2}], "odd.key": True}}
    assert select(doc, "$") is doc
    assert select(doc, "data.items[-1].id") == 2
    assert select(doc, "$.data.items[*].id") == [1, 2]
    assert select(doc, 'data["odd.key"]') is True
    with pytest.raises(PathNotFound):
        select(doc, "data.missing")
    with pytest.raises(PathNotFound, match="unsupported"):
        select(doc, "data..items")


def test_errors_summarise_as_json_safe_dicts() -> None:
    error = ConnectorUnavailable(
        "GET /x: HTTP 429", connection="erp", status_code=429, retry_after=3
    )
    assert error.as_dict() == {
        "error": "ConnectorUnavailable",
        "connection": "erp",
        "message": "[erp] GET /x: HTTP 429",
        "retryable": True,
        "status_code": 429,
        "retry_after": 3,
    }
