"""Trace spans for runs: every span of one run lands in one trace, keyed by the run id.

A run lives for days and moves between processes, so its steps cannot nest under
one open span. Each step's span takes as its parent a span context *derived from
the run id* (the trace id and span id are digests of it): every step of a run, on
any worker, after any restart, joins the same trace. When the run ends the engine
emits that parent itself (``emit_run_span``), from the run's start to its end,
with the same ids, so a trace viewer shows one tree per run.

Only the OpenTelemetry API is used here, never the SDK: without a provider set up
(``bot/tracing.py``, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set) every call is a
no-op. Forcing the run span's own ids needs the SDK's id generator to cooperate:
it reads ``FORCED_IDS``.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from workflows.tables import RunRow

RUN_ID = "switchboard.run_id"
WORKFLOW = "switchboard.workflow"

FORCED_IDS: ContextVar[tuple[int, int] | None] = ContextVar("switchboard_forced_ids", default=None)
"""(trace id, span id) the next root span must take (the run span); read by the id generator."""


def run_ids(run_id: str) -> tuple[int, int]:
    """The run's trace id (128 bits) and its root span's id (64 bits); never zero."""
    digest = hashlib.sha256(run_id.encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


def run_parent(run_id: str) -> Context:
    """A context whose current span is the run's (remote, sampled): a step's parent."""
    trace_id, span_id = run_ids(run_id)
    parent = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def step_span(
    tracer: trace.Tracer, run: RunRow, step_id: str, kind: str, attempt: int
) -> AbstractContextManager[trace.Span]:
    """One attempt of a step, in its run's trace (whichever process runs it)."""
    return tracer.start_as_current_span(
        f"step {kind}",
        context=run_parent(run.id),
        attributes={
            RUN_ID: run.id,
            WORKFLOW: run.workflow,
            "switchboard.step": step_id,
            "switchboard.attempt": attempt,
        },
    )


def emit_run_span(tracer: trace.Tracer, run: RunRow, status: str, ended: datetime) -> None:
    """The run's root span, from its start to its end, with the ids its steps point at."""
    run_id, workflow, started = run.id, run.workflow, run.created_at
    token = FORCED_IDS.set(run_ids(run_id))
    try:
        span = tracer.start_span(
            f"run {workflow}",
            context=Context(),  # a root: no parent, whatever is current
            start_time=_ns(started),
            attributes={RUN_ID: run_id, WORKFLOW: workflow, "switchboard.status": status},
        )
    finally:
        FORCED_IDS.reset(token)
    span.end(end_time=_ns(max(ended, started)))


def _ns(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite: UTC
    return int(aware.timestamp() * 1_000_000_000)
