"""The series ``bot/metrics.py`` records: names, help, labels and buckets, in one registry.

Each series is one line in ``Series.__init__`` and its help text one line in ``HELP``,
so the list reads as a table of what ``GET /metrics`` shows. Label values come from
bounded sets (workflow names, step kinds, Slack methods and error codes, connection
names), never run or user ids, which grow without bound.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

PREFIX = "switchboard_"

# Buckets are chosen per measurement: an ack must land well under Slack's 3 s, a step
# is usually sub-second, a queue delay or a run can last minutes to days.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
RUN_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 259200.0, 604800.0)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HELP: dict[str, str] = {
    # Engine
    "step_duration_seconds": "Wall time of one step attempt (job), by step kind and result.",
    "job_queue_delay_seconds": "Time from a job being due to a worker starting it, by step kind.",
    "runs_finished_total": "Runs that ended, by workflow and status.",
    "run_duration_seconds": "Time from a run's request to its end (people's waits included), "
    "by workflow.",
    "lease_takeovers_total": "Jobs claimed again because the worker holding them stopped "
    "renewing its lease.",
    "steps_deferred_total": "Steps put back in the queue because their workflow or connection "
    "was at its concurrency limit.",
    # Ingress
    "requests_received_total": "Requests received, by trigger kind and HTTP status answered.",
    "ack_duration_seconds": "Time to answer a Slack request (Slack gives up after 3 s), "
    "by trigger kind.",
    # Slack Web API
    "slack_api_calls_total": "Slack Web API calls, by method and outcome (ok or Slack's error "
    "code).",
    "slack_api_call_duration_seconds": "Slack Web API call time including slack_sdk's retries, "
    "by method.",
    "slack_api_rate_limited_total": "HTTP 429 answers from the Slack Web API (retried or not), "
    "by method.",
    # Database, sampled at scrape time
    "database_up": "1 if the last scrape could read the database within its timeout.",
    "jobs_due": "Queued jobs whose due time has passed (work waiting for a worker).",
    "jobs_due_oldest_age_seconds": "How long the oldest due job has been waiting (0 when none).",
    "approvals_pending": "Approval gates waiting for a decision.",
    "approvals_pending_oldest_age_seconds": "How long the oldest open approval has been waiting "
    "(0 when none).",
    # Connectors
    "connector_calls_total": "Calls to business systems (retries included in one call), by "
    "connection, kind and outcome (ok, rejected, unavailable, circuit_open, bad_response, error).",
    "connector_call_duration_seconds": "Time of one call to a business system, retries and "
    "back-off included, by connection and kind.",
    "connector_breaker_open": "1 while a connection's circuit breaker is open (failing fast), "
    "else 0.",
    "connector_breaker_trips_total": "Times a connection's circuit breaker opened.",
    # AI
    "ai_calls_total": "AI provider calls, by provider, model, operation and outcome.",
    "ai_tokens_total": "Tokens sent to (prompt) and received from (completion) AI models.",
    "ai_cost_usd_total": "Estimated AI spend in US dollars, by provider and model.",
    "ai_call_duration_seconds": "Time of one AI provider call, by provider and operation.",
}


class Series:
    """Every series of the process, in a registry of its own (never the global default)."""

    def __init__(self) -> None:
        # ``*_created`` series (one per labelled counter/histogram) double the series count
        # and nothing here reads them; the switch is process-wide in prometheus-client.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        c, h, g = self._counter, self._histogram, self._gauge
        self.step_duration = h("step_duration_seconds", "kind result", STEP_BUCKETS)
        self.queue_delay = h("job_queue_delay_seconds", "kind", DELAY_BUCKETS)
        self.runs_finished = c("runs_finished_total", "workflow status")
        self.run_duration = h("run_duration_seconds", "workflow status", RUN_BUCKETS)
        self.lease_takeovers = c("lease_takeovers_total")
        self.steps_deferred = c("steps_deferred_total", "workflow")
        self.requests = c("requests_received_total", "trigger status")
        self.ack_duration = h("ack_duration_seconds", "trigger", ACK_BUCKETS)
        self.slack_calls = c("slack_api_calls_total", "method outcome")
        self.slack_duration = h("slack_api_call_duration_seconds", "method", CALL_BUCKETS)
        self.slack_rate_limited = c("slack_api_rate_limited_total", "method")
        self.database_up = g("database_up")
        self.jobs_due = g("jobs_due")
        self.jobs_due_age = g("jobs_due_oldest_age_seconds")
        self.approvals_pending = g("approvals_pending")
        self.approvals_pending_age = g("approvals_pending_oldest_age_seconds")
        self.connector_calls = c("connector_calls_total", "connection kind outcome")
        self.connector_duration = h(
            "connector_call_duration_seconds", "connection kind", CALL_BUCKETS
        )
        self.breaker_open = g("connector_breaker_open", "connection")
        self.breaker_trips = c("connector_breaker_trips_total", "connection")
        self.ai_calls = c("ai_calls_total", "provider model operation outcome")
        self.ai_tokens = c("ai_tokens_total", "provider model direction")
        self.ai_cost = c("ai_cost_usd_total", "provider model")
        self.ai_duration = h("ai_call_duration_seconds", "provider operation", CALL_BUCKETS)
        # (trigger, status) -> its two children: ``labels()`` is not paid on every request.
        self.request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def _counter(self, name: str, labels: str = "") -> Counter:
        return Counter(PREFIX + name, HELP[name], labels.split(), registry=self.registry)

    def _gauge(self, name: str, labels: str = "") -> Gauge:
        return Gauge(PREFIX + name, HELP[name], labels.split(), registry=self.registry)

    def _histogram(self, name: str, labels: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(
            PREFIX + name, HELP[name], labels.split(), buckets=buckets, registry=self.registry
        )
