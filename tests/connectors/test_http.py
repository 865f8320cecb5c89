"""The http connector and the framework under it, against a real loopback server."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import Hooks
from connectors.config import HttpConfig, RetrySettings
from connectors.errors import (
    CircuitOpen,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorRejected,
    ConnectorUnavailable,
)
from connectors.http import HttpConnector, Pagination
from connectors.resilience import BreakerState
from connectors.transport import parse_retry_after
from tests.connectors.conftest import FAST_BREAKER, FAST_RETRY, Call, FakeApi, Reply, state_of
from tests.support.servers import free_port, serve_asgi

ENV = {"ERP_TOKEN": "tok-s3cret-123", "ERP_KEY": "key-s3cret-456"}

MakeHttp = Callable[..., HttpConnector]


@pytest.fixture
async def make_http(api: FakeApi) -> AsyncIterator[MakeHttp]:
    made: list[HttpConnector] = []

    def make(
        base_url: str | None = None, hooks: Hooks | None = None, **overrides: Any
    ) -> HttpConnector:
        settings: dict[str, Any] = {
            "base_url": base_url or api.base_url,
            "token_env": "ERP_TOKEN",
            "timeout_s": 2.0,
            "retry": FAST_RETRY,
            "breaker": FAST_BREAKER,
            **overrides,
        }
        connector = HttpConnector.from_config("erp", HttpConfig(**settings), ENV, hooks)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


async def test_get_sends_query_static_and_secret_headers_and_selects(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.script("/po/42", Reply(json={"data": {"lines": [{"amount": 10}, {"amount": 5}]}}))
    erp = make_http(headers={"X-Team": "finance"}, secret_headers={"X-Api-Key": "ERP_KEY"})

    result = await erp.request(
        "GET", "/po/42", query={"expand": "lines"}, select="data.lines[*].amount"
    )

    assert result.status_code == 200
    assert result.data == [10, 5]
    call = api.calls[0]
    assert call.query == {"expand": "lines"}
    assert call.headers["authorization"] == "Bearer tok-s3cret-123"
    assert call.headers["x-api-key"] == "key-s3cret-456"
    assert call.headers["x-team"] == "finance"


async def test_compressed_json_is_decoded_once(api: FakeApi, make_http: MakeHttp) -> None:
    body = gzip.compress(json.dumps({"rows": list(range(100))}).encode())
    api.script("/gz", Reply(body=body, headers={"Content-Encoding": "gzip"}))
    result = await make_http().request("GET", "/gz", select="rows[-1]")
    assert result.data == 99


async def test_post_json_with_idempotency_key_is_retried_after_5xx(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.script("/ledger", Reply(500), Reply(502), Reply(201, json={"id": "L-1"}))
    erp = make_http()

    result = await erp.request("POST", "/ledger", json={"amount": 1}, idempotency_key="run1:book")

    assert result.data == {"id": "L-1"}
    calls = api.calls_to("/ledger")
    assert len(calls) == 3
    assert {c.headers["idempotency-key"] for c in calls} == {"run1:book"}
    assert [c.json() for c in calls] == [{"amount": 1}] * 3


async def test_post_without_key_is_not_retried_after_500_but_is_after_503(
    api: FakeApi, make_http: MakeHttp
) -> None:
    erp = make_http()
    api.script("/a", Reply(500, json={"error": "boom"}))
    with pytest.raises(ConnectorUnavailable) as info:
        await erp.request("POST", "/a", json={})
    assert info.value.retryable and info.value.status_code == 500
    assert len(api.calls_to("/a")) == 1  # the server may have acted: not repeated in process

    api.script("/b", Reply(503), Reply(200, json={"ok": True}))
    assert (await erp.request("POST", "/b", json={})).data == {"ok": True}
    assert len(api.calls_to("/b")) == 2  # 503: not processed, safe to repeat


async def test_get_gives_up_after_the_configured_attempts(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.script("/x", Reply(500), Reply(500), Reply(500), Reply(200))
    erp = make_http()
    with pytest.raises(ConnectorUnavailable):
        await erp.request("GET", "/x")
    assert len(api.calls_to("/x")) == 3


async def test_429_honours_retry_after_seconds(api: FakeApi, make_http: MakeHttp) -> None:
    api.script("/rate", Reply(429, headers={"Retry-After": "1"}), Reply(200, json=[1]))
    erp = make_http()
    started = time.monotonic()
    result = await erp.request("POST", "/rate", json={})
    assert result.data == [1]
    assert time.monotonic() - started >= 0.9
    assert len(api.calls_to("/rate")) == 2


async def test_retry_after_beyond_the_cap_is_handed_to_the_engine(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.script("/rate", Reply(429, headers={"Retry-After": "120"}))
    erp = make_http(retry=RetrySettings(attempts=3, max_retry_after_s=5))
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable) as info:
        await erp.request("GET", "/rate")
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 120 and info.value.retryable
    assert len(api.calls_to("/rate")) == 1


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_timeout_is_retried_for_get_and_not_for_post(
    api: FakeApi, make_http: MakeHttp
) -> None:
    erp = make_http(timeout_s=0.2, retry=FAST_RETRY.model_copy(update={"attempts": 2}))
    api.script("/slow", Reply(delay_s=0.6), Reply(delay_s=0.6))
    with pytest.raises(ConnectorUnavailable, match="timed out"):
        await erp.request("GET", "/slow")
    assert len(api.calls_to("/slow")) == 2

    api.script("/slow-post", Reply(delay_s=0.6))
    with pytest.raises(ConnectorUnavailable):
        await erp.request("POST", "/slow-post", json={})
    assert len(api.calls_to("/slow-post")) == 1


async def test_malformed_json_and_missing_selection_are_bad_responses(
    api: FakeApi, make_http: MakeHttp
) -> None:
    erp = make_http()
    api.script("/bad", Reply(body=b'{"truncated": '))
    with pytest.raises(ConnectorBadResponse) as info:
        await erp.request("GET", "/bad")
    assert not info.value.retryable
    assert len(api.calls_to("/bad")) == 1

    api.script("/shape", Reply(json={"data": []}))
    with pytest.raises(ConnectorBadResponse, match="no index 0"):
        await erp.request("GET", "/shape", select="data[0].id")


async def test_4xx_is_rejected_once_and_echoed_secrets_are_masked(
    api: FakeApi, make_http: MakeHttp
) -> None:
    def echo_auth(call: Call, _base: str) -> Reply:
        return Reply(403, json={"error": f"bad credentials {call.headers['authorization']}"})

    api.handle("/secret", echo_auth)
    erp = make_http()
    with pytest.raises(ConnectorRejected) as info:
        await erp.request("GET", "/secret")
    error = info.value
    assert error.status_code == 403 and not error.retryable and error.connection == "erp"
    assert "bad credentials" in str(error)
    assert "tok-s3cret-123" not in str(error) and "tok-s3cret-123" not in repr(error)
    assert len(api.calls_to("/secret")) == 1


async def test_redirects_and_oversized_bodies_are_refused(
    api: FakeApi, make_http: MakeHttp
) -> None:
    erp = make_http(max_response_bytes=1000)
    api.script("/moved", Reply(302, headers={"Location": "https://elsewhere.example/x"}))
    with pytest.raises(ConnectorBadResponse, match="redirect"):
        await erp.request("GET", "/moved")
    api.script("/big", Reply(json=["x" * 2000]))
    with pytest.raises(ConnectorBadResponse, match="larger than 1000"):
        await erp.request("GET", "/big")


def _pages(call: Call, base: str) -> Reply:
    page = int(call.query.get("page", "1"))
    headers = {"Link": f'<{base}/items?page={page + 1}>; rel="next"'} if page < 3 else {}
    return Reply(json={"data": [page * 10, page * 10 + 1]}, headers=headers)


async def test_link_pagination_follows_next_and_is_bounded(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.handle("/items", _pages)
    erp = make_http()

    everything = await erp.paginate("/items", Pagination(mode="link", items="data"))
    assert everything.items == [10, 11, 20, 21, 30, 31]
    assert (everything.pages, everything.truncated) == (3, False)

    bounded = await erp.paginate("/items", Pagination(mode="link", items="data", max_pages=2))
    assert bounded.items == [10, 11, 20, 21] and bounded.truncated


async def test_cursor_pagination(api: FakeApi, make_http: MakeHttp) -> None:
    def cursor_pages(call: Call, _base: str) -> Reply:
        nxt = {"": "c2", "c2": "c3", "c3": None}[call.query.get("after", "")]
        return Reply(json={"results": [call.query.get("after", "first")], "meta": {"next": nxt}})

    api.handle("/things", cursor_pages)
    erp = make_http()
    spec = Pagination(mode="cursor", items="results", cursor_path="meta.next", cursor_param="after")
    result = await erp.paginate("/things", spec, query={"status": "open"})
    assert result.items == ["first", "c2", "c3"] and not result.truncated
    assert all(c.query["status"] == "open" for c in api.calls_to("/things"))


async def test_next_link_to_another_origin_is_not_followed(
    api: FakeApi, make_http: MakeHttp
) -> None:
    api.script("/items", Reply(json=[1], headers={"Link": '<https://evil.example/x>; rel="next"'}))
    erp = make_http()
    with pytest.raises(ConnectorRejected, match="URL leaves the connection's base_url"):
        await erp.paginate("/items", Pagination(mode="link"))


async def test_concurrency_is_limited_per_connection(api: FakeApi, make_http: MakeHttp) -> None:
    for _ in range(6):
        api.script("/slowish", Reply(delay_s=0.1))
    erp = make_http(max_concurrency=2)
    await asyncio.gather(*(erp.request("GET", "/slowish") for _ in range(6)))
    assert api.max_in_flight == 2


async def test_dead_host_trips_breaker_fails_fast_reports_once_and_recovers(
    make_http: MakeHttp,
) -> None:
    port = free_port()  # nothing listens here yet
    trips: list[tuple[str, ConnectorError]] = []
    recoveries: list[str] = []
    hooks = Hooks(on_trip=lambda n, e: trips.append((n, e)), on_recover=recoveries.append)
    erp = make_http(f"http://127.0.0.1:{port}", hooks, retry=RetrySettings(attempts=1))
    breaker = erp.transport.guard.breaker

    for _ in range(3):
        with pytest.raises(ConnectorUnavailable, match="cannot connect"):
            await erp.request("GET", "/health")
    assert state_of(breaker) is BreakerState.OPEN
    for _ in range(5):
        with pytest.raises(CircuitOpen) as info:
            await erp.request("GET", "/health")
        assert info.value.retryable and 0 < info.value.retry_after <= 0.3
    assert [name for name, _ in trips] == ["erp"]
    assert isinstance(trips[0][1], ConnectorUnavailable)

    await asyncio.sleep(0.35)  # half-open: one probe goes through, still dead, re-opens
    with pytest.raises(ConnectorUnavailable):
        await erp.request("GET", "/health")
    with pytest.raises(CircuitOpen):
        await erp.request("GET", "/health")
    assert len(trips) == 1  # the same outage is reported once

    revived = FakeApi()
    async with serve_asgi(revived.app, port=port):
        with pytest.raises(CircuitOpen):  # still open: fails fast without touching the server
            await erp.request("GET", "/health")
        assert revived.calls == []
        await asyncio.sleep(0.35)
        assert (await erp.request("GET", "/health")).status_code == 200
        assert state_of(breaker) is BreakerState.CLOSED
        assert recoveries == ["erp"]
        await erp.request("GET", "/health")
    assert len(trips) == 1


async def test_rate_limits_and_rejections_do_not_trip_the_breaker(
    api: FakeApi, make_http: MakeHttp
) -> None:
    trips: list[str] = []
    erp = make_http(
        hooks=Hooks(on_trip=lambda n, _e: trips.append(n)), retry=RetrySettings(attempts=1)
    )
    for _ in range(5):
        api.script("/nope", Reply(404), Reply(429, headers={"Retry-After": "0"}))
        with pytest.raises(ConnectorRejected):
            await erp.request("GET", "/nope")
        with pytest.raises(ConnectorUnavailable):
            await erp.request("GET", "/nope")
    assert trips == []
