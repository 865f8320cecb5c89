"""OpenTelemetry export: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else no-op spans.

Each process (``serve``, ``worker``, ``demo``) gets its own tracer provider, held by
its runtime (no global provider: tests run several bots in one process), exporting
OTLP over HTTP to ``<endpoint>/v1/traces`` in batches. Spans: the ack of each Slack
request, each step and the run (``workflows/tracing.py``), each Slack Web API call,
each connector call and each AI call, all carrying the run id where there is one.

The SDK and exporter are the ``[otel]`` extra; asking for traces without them stops
start-up with one line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from bot.settings import ConfigurationError
from workflows.tracing import FORCED_IDS


class TracingUnavailable(ConfigurationError):
    """Traces were asked for but the SDK is not installed: one line for the operator."""


@dataclass
class Tracing:
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    _provider: Any = None

    @classmethod
    def from_endpoint(cls, endpoint: str, service: str = "switchboard") -> Tracing:
        """Export to ``endpoint`` (OTLP/HTTP base URL), or no-op spans when it is empty."""
        if not endpoint:
            return cls()
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.trace.id_generator import IdGenerator
        except ImportError:  # the [otel] extra is not installed
            raise TracingUnavailable(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry's SDK is not installed: "
                "pip install 'switchboard-bot[otel]'"
            ) from None

        class RunIdGenerator(IdGenerator):
            """Random ids, except the run span's, which its steps already point at."""

            def generate_span_id(self) -> int:
                forced = FORCED_IDS.get()
                return forced[1] if forced else random.getrandbits(64) or 1

            def generate_trace_id(self) -> int:
                forced = FORCED_IDS.get()
                return forced[0] if forced else random.getrandbits(128) or 1

        provider = TracerProvider(
            resource=Resource.create({"service.name": service}), id_generator=RunIdGenerator()
        )
        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        return cls(provider.get_tracer("switchboard"), provider)

    def shutdown(self) -> None:
        """Send what is buffered and stop (a blocking flush, bounded by the exporter's timeout)."""
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None
