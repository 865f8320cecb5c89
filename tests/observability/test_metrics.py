"""``/metrics``: Prometheus names and plausible values after a real run through the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from connectors.errors import ConnectorError
from connectors.registry import ConnectorRegistry
from sandbox.slack.web_api import Fault
from tests.observability.seed import seed_week
from tests.support.clock import ManualClock
from tests.support.engines import make_engine, workflow
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.runs import StartRequest, start_run
from workflows.tables import JobRow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


Family = tuple[str, str, set[str]]


def parse(text: str) -> tuple[list[Family], Samples]:
    """(name, type, sample names) of every family, and every sample's value by labels."""
    families: list[Family] = []
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.append((family.name, family.type, {s.name for s in family.samples}))
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(harness: Harness) -> tuple[httpx.Response, Samples, list[Family]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{harness.bot_url}/metrics")
    response.raise_for_status()
    families, samples = parse(response.text)
    return response, samples, families


async def test_metrics_after_an_end_to_end_run(database: Database) -> None:
    async with running_bot(database) as harness:
        # One 429 on the first post: slack_sdk waits and retries; the run does not notice.
        harness.slack.inject_faults(
            "chat.postMessage", [Fault(status=429, error="ratelimited", retry_after=0)]
        )
        result = await harness.slack.slash_command("alice", "general", "start hello metrics")
        assert result.ok
        root = await harness.root_message("general", "started hello")
        await harness.thread_of("general", root, replies=2)  # the run card and the reply

        async def finished() -> Samples | None:
            _, samples, _ = await scrape(harness)
            done = value(
                samples, "switchboard_runs_finished_total", workflow="hello", status="succeeded"
            )
            return samples if done else None

        samples = await harness.slack.wait_for(finished, timeout=10)
        response, _, families = await scrape(harness)

    assert response.headers["content-type"].startswith("text/plain")
    for name, kind, sample_names in families:
        assert name.startswith("switchboard_"), name
        if kind == "counter":
            assert all(s.endswith(("_total", "_created")) for s in sample_names), name
        if kind == "histogram" or any(word in name for word in ("duration", "delay", "age")):
            assert name.endswith("_seconds"), name
        if kind == "gauge":
            assert not name.endswith("_total"), name

    run = {"workflow": "hello", "status": "succeeded"}
    assert value(samples, "switchboard_runs_finished_total", **run) == 1
    assert value(samples, "switchboard_run_duration_seconds_count", **run) == 1
    assert 0 < value(samples, "switchboard_run_duration_seconds_sum", **run) < 30
    for kind in ("set", "post"):
        assert (
            value(samples, "switchboard_step_duration_seconds_count", kind=kind, result="ok") == 1
        )
        assert value(samples, "switchboard_job_queue_delay_seconds_count", kind=kind) == 1
        assert 0 <= value(samples, "switchboard_job_queue_delay_seconds_sum", kind=kind) < 10
    command = {"trigger": "command"}
    assert value(samples, "switchboard_requests_received_total", status="200", **command) == 1
    assert value(samples, "switchboard_ack_duration_seconds_count", **command) == 1
    assert 0 < value(samples, "switchboard_ack_duration_seconds_sum", **command) < 3
    posted = value(
        samples, "switchboard_slack_api_calls_total", method="chat.postMessage", outcome="ok"
    )
    assert posted >= 3, "the root message, the run card and the reply"
    assert (
        value(samples, "switchboard_slack_api_rate_limited_total", method="chat.postMessage") == 1
    )
    assert (
        value(samples, "switchboard_slack_api_calls_total", method="auth.test", outcome="ok") == 1
    )
    assert value(samples, "switchboard_database_up") == 1
    assert value(samples, "switchboard_jobs_due") == 0
    assert value(samples, "switchboard_approvals_pending") == 0
    assert value(samples, "switchboard_lease_takeovers_total") == 0


async def test_a_job_claimed_after_its_lease_expired_counts_as_a_takeover(
    database: Database,
) -> None:
    store = database.store()
    clock = ManualClock(datetime.now(UTC))
    definition = workflow("name: t\nsteps:\n  - id: a\n    set: {x: 1}\n")
    metrics = Metrics()
    dead = make_engine(store, clock, definition, owner="dead-worker")
    live = make_engine(store, clock, definition, owner="live-worker")
    dead.observer = live.observer = metrics
    try:
        await start_run(store, StartRequest(definition, "test"), clock.now())
        (claimed,) = await dead.claim(1)  # ... and its worker dies before finishing
        assert metrics.registry.get_sample_value("switchboard_lease_takeovers_total") == 0
        clock.advance(dead.lease_seconds + 5)
        (again,) = await live.claim(1)
        assert again.id == claimed.id
        assert metrics.registry.get_sample_value("switchboard_lease_takeovers_total") == 1
        await live.execute(again)
    finally:
        await store.dispose()
    labels = {"workflow": "t", "status": "succeeded"}
    assert metrics.registry.get_sample_value("switchboard_runs_finished_total", labels) == 1
    delay = metrics.registry.get_sample_value(
        "switchboard_job_queue_delay_seconds_sum", {"kind": "set"}
    )
    assert delay is not None and delay >= dead.lease_seconds, "due long before it ran"


async def test_a_tripped_connector_breaker_shows() -> None:
    metrics = Metrics()
    registry = ConnectorRegistry.build(
        {
            "erp": {
                "type": "http",
                "base_url": "http://127.0.0.1:9",
                "retry": {"attempts": 1},
                "breaker": {"failure_threshold": 1},
            }
        },
        env={},
        hooks=metrics.connector_hooks(),
    )
    async with registry:
        with pytest.raises(ConnectorError):
            await registry.http("erp").request("GET", "/health")
        with pytest.raises(ConnectorError):  # the breaker is open now: fails fast
            await registry.http("erp").request("GET", "/health")
    erp = {"connection": "erp"}
    assert metrics.registry.get_sample_value("switchboard_connector_breaker_open", erp) == 1
    assert metrics.registry.get_sample_value("switchboard_connector_breaker_trips_total", erp) == 1
    # Each call is counted once by outcome (the connector hook), with its latency.
    calls = "switchboard_connector_calls_total"
    for outcome in ("unavailable", "circuit_open"):
        labels = {"connection": "erp", "kind": "http", "outcome": outcome}
        assert metrics.registry.get_sample_value(calls, labels) == 1, outcome
    latency = "switchboard_connector_call_duration_seconds_count"
    assert metrics.registry.get_sample_value(latency, {**erp, "kind": "http"}) == 2


async def test_database_gauges_are_sampled_when_scraped(database: Database) -> None:
    store = database.store()
    now = datetime.now(UTC).replace(microsecond=0)
    metrics = Metrics()
    try:
        await seed_week(store, now, "UA", "UB")  # one approval open for 5 hours
        async with store.transaction() as session:
            session.add(
                JobRow(
                    run_id="p5",
                    step_id="late",
                    kind="step",
                    payload={},
                    status="queued",
                    due_at=now - timedelta(minutes=2),
                    attempt=0,
                    failures=0,
                    created_at=now,
                )
            )
        text = (await metrics.exposition(store, now)).decode()
    finally:
        await store.dispose()
    _, samples = parse(text)
    assert value(samples, "switchboard_database_up") == 1
    assert value(samples, "switchboard_jobs_due") == 1
    assert value(samples, "switchboard_jobs_due_oldest_age_seconds") == 120
    assert value(samples, "switchboard_approvals_pending") == 1
    assert value(samples, "switchboard_approvals_pending_oldest_age_seconds") == 5 * 3600
