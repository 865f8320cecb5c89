"""Prometheus metrics of one process: what is measured, and the adapters that measure it.

``Metrics`` owns a ``CollectorRegistry`` of its own (never prometheus-client's
global default), built once by the composition root and exposed at
``GET /metrics``. Each process has its own and is scraped separately;
Prometheus adds the ``instance`` label.

Who reports what:

- the engine, through the ``EngineObserver`` port (``workflows/observe.py``):
  step duration and queue delay by step kind, runs finished, lease takeovers;
- ``bot/server.py``: requests received by trigger kind (``unverified`` for any
  request whose signature was not checked) and ack latency;
- ``MeteredWebClient`` and ``CountingRateLimitHandler``: every Slack Web API
  call by method and outcome, and every 429 (also those slack_sdk retried
  successfully, which callers never see);
- connector breakers, through ``connector_hooks()`` (``connectors.base.Hooks``);
- AI providers, through ``MeteredAI`` (a wrapper) or ``Metrics.ai_call``;
- the database, read when scraped (``refresh_from_db``): jobs due and approvals
  pending, two indexed counts under a short timeout.

Label values come from bounded sets (workflow names, step kinds, Slack methods
and error codes, connection names), never run or user ids, which grow without
bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import func, select

from connectors.ai.base import (
    AIProvider,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    Provenance,
    SummarizeRequest,
    Summary,
)
from connectors.base import Hooks
from connectors.errors import ConnectorError
from workflows.observe import RunStatus, StepResult
from workflows.store import Store
from workflows.tables import GateRow, JobRow

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Buckets are chosen per measurement: an ack must land well under Slack's 3 s, a step
# is usually sub-second, a queue delay or a run can last minutes to days.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
RUN_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 259200.0, 604800.0)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SCRAPE_DB_TIMEOUT = 2.0
"""Seconds a scrape may spend on its database counts; a slow database shows as down."""


class Metrics:
    """Every metric of the process, in one registry; also the engine's ``EngineObserver``."""

    def __init__(self) -> None:
        # ``*_created`` series (one per labelled counter/histogram) double the series count
        # and nothing here reads them; the switch is process-wide in prometheus-client.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Engine
        self.step_duration = Histogram(
            "switchboard_step_duration_seconds",
            "Wall time of one step attempt (job), by step kind and result.",
            ["kind", "result"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.queue_delay = Histogram(
            "switchboard_job_queue_delay_seconds",
            "Time from a job being due to a worker starting it, by step kind.",
            ["kind"],
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.runs_finished = Counter(
            "switchboard_runs_finished_total",
            "Runs that ended, by workflow and status.",
            ["workflow", "status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "switchboard_run_duration_seconds",
            "Time from a run's request to its end (people's waits included), by workflow.",
            ["workflow", "status"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.lease_takeovers = Counter(
            "switchboard_lease_takeovers_total",
            "Jobs claimed again because the worker holding them stopped renewing its lease.",
            registry=r,
        )
        self.steps_deferred = Counter(
            "switchboard_steps_deferred_total",
            "Steps put back in the queue because their workflow or connection was at its "
            "concurrency limit.",
            ["workflow"],
            registry=r,
        )
        # Ingress
        self.requests = Counter(
            "switchboard_requests_received_total",
            "Requests received, by trigger kind and HTTP status answered.",
            ["trigger", "status"],
            registry=r,
        )
        self.ack_duration = Histogram(
            "switchboard_ack_duration_seconds",
            "Time to answer a Slack request (Slack gives up after 3 s), by trigger kind.",
            ["trigger"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        # Slack Web API
        self.slack_calls = Counter(
            "switchboard_slack_api_calls_total",
            "Slack Web API calls, by method and outcome (ok or Slack's error code).",
            ["method", "outcome"],
            registry=r,
        )
        self.slack_duration = Histogram(
            "switchboard_slack_api_call_duration_seconds",
            "Slack Web API call time including slack_sdk's retries, by method.",
            ["method"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "switchboard_slack_api_rate_limited_total",
            "HTTP 429 answers from the Slack Web API (retried or not), by method.",
            ["method"],
            registry=r,
        )
        # Database, sampled at scrape time
        self.database_up = Gauge(
            "switchboard_database_up",
            "1 if the last scrape could read the database within its timeout.",
            registry=r,
        )
        self.jobs_due = Gauge(
            "switchboard_jobs_due",
            "Queued jobs whose due time has passed (work waiting for a worker).",
            registry=r,
        )
        self.jobs_due_age = Gauge(
            "switchboard_jobs_due_oldest_age_seconds",
            "How long the oldest due job has been waiting (0 when none).",
            registry=r,
        )
        self.approvals_pending = Gauge(
            "switchboard_approvals_pending",
            "Approval gates waiting for a decision.",
            registry=r,
        )
        self.approvals_pending_age = Gauge(
            "switchboard_approvals_pending_oldest_age_seconds",
            "How long the oldest open approval has been waiting (0 when none).",
            registry=r,
        )
        # Connectors
        self.connector_calls = Counter(
            "switchboard_connector_calls_total",
            "Calls to business systems, by connection and outcome (ok or error).",
            ["connection", "outcome"],
            registry=r,
        )
        self.connector_duration = Histogram(
            "switchboard_connector_call_duration_seconds",
            "Time of one call to a business system, by connection.",
            ["connection"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.breaker_open = Gauge(
            "switchboard_connector_breaker_open",
            "1 while a connection's circuit breaker is open (failing fast), else 0.",
            ["connection"],
            registry=r,
        )
        self.breaker_trips = Counter(
            "switchboard_connector_breaker_trips_total",
            "Times a connection's circuit breaker opened.",
            ["connection"],
            registry=r,
        )
        # AI
        self.ai_calls = Counter(
            "switchboard_ai_calls_total",
            "AI provider calls, by provider, model, operation and outcome.",
            ["provider", "model", "operation", "outcome"],
            registry=r,
        )
        self.ai_tokens = Counter(
            "switchboard_ai_tokens_total",
            "Tokens sent to (prompt) and received from (completion) AI models.",
            ["provider", "model", "direction"],
            registry=r,
        )
        self.ai_cost = Counter(
            "switchboard_ai_cost_usd_total",
            "Estimated AI spend in US dollars, by provider and model.",
            ["provider", "model"],
            registry=r,
        )
        self.ai_duration = Histogram(
            "switchboard_ai_call_duration_seconds",
            "Time of one AI provider call, by provider and operation.",
            ["provider", "operation"],
            buckets=CALL_BUCKETS,
            registry=r,
        )

    # ------------------------------------------------------------ EngineObserver

    def step_finished(
        self, workflow: str, kind: str, result: StepResult, seconds: float, queue_delay: float
    ) -> None:
        self.step_duration.labels(kind, result).observe(max(seconds, 0.0))
        self.queue_delay.labels(kind).observe(max(queue_delay, 0.0))

    def run_finished(self, workflow: str, status: RunStatus, seconds: float) -> None:
        self.runs_finished.labels(workflow, status).inc()
        self.run_duration.labels(workflow, status).observe(max(seconds, 0.0))

    def lease_taken_over(self) -> None:
        self.lease_takeovers.inc()

    def step_deferred(self, workflow: str) -> None:
        self.steps_deferred.labels(workflow).inc()

    # ------------------------------------------------------------ ingress, Slack, AI, connectors

    def request_received(self, trigger: str, status: int, seconds: float) -> None:
        """A request arrived and was answered in ``seconds``; webhook ingress may report too."""
        self.requests.labels(trigger, str(status)).inc()
        self.ack_duration.labels(trigger).observe(max(seconds, 0.0))

    def slack_call(self, method: str, outcome: str, seconds: float) -> None:
        self.slack_calls.labels(method, outcome).inc()
        self.slack_duration.labels(method).observe(max(seconds, 0.0))

    def connector_call(self, connection: str, *, ok: bool, seconds: float) -> None:
        """One call to a business system (for a per-call connector hook; see the report)."""
        self.connector_calls.labels(connection, "ok" if ok else "error").inc()
        self.connector_duration.labels(connection).observe(max(seconds, 0.0))

    def connector_hooks(self) -> Hooks:
        """Breaker callbacks for ``ConnectorRegistry.build``: trips and recoveries."""

        def tripped(connection: str, _error: ConnectorError) -> None:
            self.breaker_trips.labels(connection).inc()
            self.breaker_open.labels(connection).set(1)

        def recovered(connection: str) -> None:
            self.breaker_open.labels(connection).set(0)

        return Hooks(on_trip=tripped, on_recover=recovered)

    def ai_call(
        self,
        operation: str,
        provenance: Provenance | None,
        *,
        ok: bool,
        seconds: float,
        provider: str = "",
    ) -> None:
        """One AI call. AI steps that call a provider themselves report here.

        ``provenance`` (from the answer) gives provider, model, tokens and cost; for
        a failed call pass ``None`` and the provider's name.
        """
        name = provenance.provider if provenance else provider
        model = provenance.model if provenance else ""
        self.ai_calls.labels(name, model, operation, "ok" if ok else "error").inc()
        self.ai_duration.labels(name, operation).observe(max(seconds, 0.0))
        if provenance is None:
            return
        usage = provenance.usage
        self.ai_tokens.labels(name, model, "prompt").inc(max(usage.prompt_tokens, 0))
        self.ai_tokens.labels(name, model, "completion").inc(max(usage.completion_tokens, 0))
        self.ai_cost.labels(name, model).inc(max(usage.cost_usd, 0.0))

    # ------------------------------------------------------------ scrape

    async def refresh_from_db(self, store: Store, now: datetime) -> None:
        """Sample the gauges that live in the database; never raises, never waits long."""
        try:
            async with asyncio.timeout(SCRAPE_DB_TIMEOUT), store.transaction() as session:
                due_count, due_oldest = (
                    await session.execute(
                        select(func.count(), func.min(JobRow.due_at)).where(
                            JobRow.status == "queued", JobRow.due_at <= now
                        )
                    )
                ).one()
                open_count, open_oldest = (
                    await session.execute(
                        select(func.count(), func.min(GateRow.created_at)).where(
                            GateRow.status == "open"
                        )
                    )
                ).one()
        except Exception:  # noqa: BLE001 - any driver error or timeout: report the database down
            self.database_up.set(0)
            return
        self.database_up.set(1)
        self.jobs_due.set(due_count)
        self.jobs_due_age.set(_age(now, due_oldest))
        self.approvals_pending.set(open_count)
        self.approvals_pending_age.set(_age(now, open_oldest))

    async def exposition(self, store: Store, now: datetime) -> bytes:
        """The text format Prometheus scrapes, with the database gauges fresh."""
        await self.refresh_from_db(store, now)
        return bytes(generate_latest(self.registry))


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


# ---------------------------------------------------------------- Slack Web API


def _method_of(url: str) -> str:
    """``https://slack.com/api/chat.postMessage`` -> ``chat.postMessage``."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "unknown"


class CountingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (honours Retry-After) that also counts every 429 it sees."""

    def __init__(self, metrics: Metrics, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # Asked once per failed response, also when retries are exhausted: one count per 429.
        if response is not None and response.status_code == 429:
            self._metrics.slack_rate_limited.labels(_method_of(request.url)).inc()
        result: bool = await super().can_retry_async(
            state=state, request=request, response=response, error=error
        )
        return result


class MeteredWebClient(AsyncWebClient):
    """The Web API client, timing and counting each call by method and outcome."""

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        started = time.perf_counter()
        outcome = "ok"
        try:
            response: AsyncSlackResponse = await super().api_call(api_method, **kwargs)
            return response
        except SlackApiError as exc:
            outcome = str(exc.response.get("error") or "error")[:40]
            raise
        except BaseException:
            outcome = "transport_error"
            raise
        finally:
            self._metrics.slack_call(api_method, outcome, time.perf_counter() - started)


# ---------------------------------------------------------------- AI


class _Answer(Protocol):
    @property
    def provenance(self) -> Provenance: ...


A = TypeVar("A", bound=_Answer)


class MeteredAI:
    """An ``AIProvider`` that reports each call's outcome, time, tokens and cost.

    The composition root wraps the configured provider with it, so AI steps need
    no metrics code: ``Services(ai=MeteredAI(provider, metrics))``.
    """

    def __init__(self, inner: AIProvider, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def name(self) -> str:
        return self._inner.name

    async def classify(self, request: ClassifyRequest) -> Classification:
        return await self._measure("classify", self._inner.classify(request))

    async def extract(self, request: ExtractRequest) -> Extraction:
        return await self._measure("extract", self._inner.extract(request))

    async def summarize(self, request: SummarizeRequest) -> Summary:
        return await self._measure("summarize", self._inner.summarize(request))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _measure(self, operation: str, call: Awaitable[A]) -> A:
        started = time.perf_counter()
        try:
            answer = await call
        except Exception:
            self._metrics.ai_call(
                operation,
                None,
                ok=False,
                seconds=time.perf_counter() - started,
                provider=self._inner.name,
            )
            raise
        self._metrics.ai_call(
            operation, answer.provenance, ok=True, seconds=time.perf_counter() - started
        )
        return answer
