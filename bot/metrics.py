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
- connectors, through ``connector_hooks()`` (``connectors.base.Hooks``): every call's
  outcome and time by connection and kind, breaker trips and recoveries;
- AI providers, through ``MeteredAI`` (a wrapper) or ``Metrics.ai_call``;
- the database, read when scraped (``refresh_from_db``): jobs due and approvals
  pending, two indexed counts under a short timeout.

The series themselves are defined in ``bot/metric_series.py``; the Slack Web API
adapters live in ``bot/slack_metrics.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol, TypeVar

from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.metric_series import Series
from bot.slack_metrics import CountingRateLimitHandler, MeteredWebClient
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

# bot/notifier.py imports the Slack adapters from here.
__all__ = ["CONTENT_TYPE", "CountingRateLimitHandler", "MeteredAI", "MeteredWebClient", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

SCRAPE_DB_TIMEOUT = 2.0
"""Seconds a scrape may spend on its database counts; a slow database shows as down."""


class Metrics(Series):
    """Every metric of the process, in one registry; also the engine's ``EngineObserver``."""

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
        children = self.request_children.get((trigger, status))
        if children is None:  # labels are bounded sets: a few entries per process
            children = (
                self.requests.labels(trigger, str(status)),
                self.ack_duration.labels(trigger),
            )
            self.request_children[(trigger, status)] = children
        children[0].inc()
        children[1].observe(max(seconds, 0.0))

    def slack_call(self, method: str, outcome: str, seconds: float) -> None:
        self.slack_calls.labels(method, outcome).inc()
        self.slack_duration.labels(method).observe(max(seconds, 0.0))

    def connector_call(self, connection: str, kind: str, outcome: str, seconds: float) -> None:
        """One call to a business system: the ``on_call`` connector hook."""
        self.connector_calls.labels(connection, kind, outcome).inc()
        self.connector_duration.labels(connection, kind).observe(max(seconds, 0.0))

    def connector_hooks(self) -> Hooks:
        """Connector callbacks for ``ConnectorRegistry.build``: calls, trips and recoveries."""

        def tripped(connection: str, _error: ConnectorError) -> None:
            self.breaker_trips.labels(connection).inc()
            self.breaker_open.labels(connection).set(1)

        def recovered(connection: str) -> None:
            self.breaker_open.labels(connection).set(0)

        return Hooks(on_trip=tripped, on_recover=recovered, on_call=self.connector_call)

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

    def __init__(
        self, inner: AIProvider, metrics: Metrics, tracer: trace.Tracer | None = None
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._tracer = tracer or trace.NoOpTracer()

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
        with self._tracer.start_as_current_span(
            f"ai {operation}", attributes={"switchboard.ai_provider": self._inner.name}
        ):
            return await self._measured(operation, call)

    async def _measured(self, operation: str, call: Awaitable[A]) -> A:
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
