"""OpenTelemetry traces over OTLP/HTTP to a local receiver (issue 19 item 7).

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the bot exports protobuf spans to
``<endpoint>/v1/traces``: the ack of the slash command (naming the run it started),
one trace per run whose root is the run and whose children are its steps, and inside
the steps the AI call, the connector call and the Slack Web API calls. The receiver is
a real HTTP server decoding the real OTLP protobuf, as a collector would.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.harness import running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database

TRACED = """
name: traced
triggers: [{command: traced}]
steps:
  - id: fields
    extract: {fields: {amount: money}}
  - id: ping
    http: {connection: erp, method: GET, path: /ping}
  - id: done
    post: {text: "ok {{ steps.fields.amount }}"}
"""


class Collector:
    """An OTLP/HTTP trace receiver: every span it was sent, flattened."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attrs": {a.key: _value(a.value) for a in span.attributes},
                            "service": service.get("service.name"),
                        }
                    )
        return Response(b"", media_type="application/x-protobuf")

    def named(self, prefix: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"].startswith(prefix)]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"pong": True})


async def test_a_run_is_one_trace_from_ack_to_every_call(
    database: Database, tmp_path: Path
) -> None:
    collector = Collector()
    receiver = Starlette(routes=[Route("/v1/traces", collector.traces, methods=["POST"])])
    erp = Starlette(routes=[Route("/api/ping", ping)])
    async with serve_asgi(receiver) as otlp, serve_asgi(erp) as erp_url:
        (tmp_path / "traced.yaml").write_text(textwrap.dedent(TRACED))
        (tmp_path / "connections.yaml").write_text(
            f"connections:\n  erp: {{type: http, base_url: '{erp_url}/api'}}\n"
        )
        async with running_bot(
            database, workflows_dir=tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp
        ) as harness:
            slack = harness.slack
            await slack.slash_command("alice", "general", "traced 40 EUR")
            root = await harness.root_message("general", "started traced")
            await slack.wait_for(
                lambda: any(
                    "ok 40.00 EUR" in m.get("text", "") for m in slack.thread("general", root["ts"])
                ),
                message="the run did not finish",
            )
            await slack.wait_for(lambda: collector.named("run "), message="no run span yet")
        # The bot has stopped: its last batch was flushed on the way out.

    (run,) = collector.named("run traced")
    run_id = run["attrs"]["switchboard.run_id"]
    assert run["parent"] == "" and run["attrs"]["switchboard.status"] == "succeeded"
    assert run["service"] == "switchboard"

    steps = {s["attrs"]["switchboard.step"]: s for s in collector.named("step ")}
    assert set(steps) == {"fields", "ping", "done"}
    for step in steps.values():
        assert (step["trace"], step["parent"]) == (run["trace"], run["id"]), step
        assert step["attrs"]["switchboard.run_id"] == run_id
        assert step["attrs"]["switchboard.result"] == "ok"

    (ack,) = [a for a in collector.named("ack ") if a["attrs"].get("switchboard.run_id")]
    assert ack["attrs"]["switchboard.run_id"] == run_id
    assert ack["attrs"]["http.response.status_code"] == 200

    def child_of(step: str, prefix: str) -> list[dict[str, Any]]:
        return [s for s in collector.named(prefix) if s["parent"] == steps[step]["id"]]

    (ai,) = child_of("fields", "ai extract")
    assert ai["trace"] == run["trace"]
    (call,) = child_of("ping", "connector http")
    assert call["attrs"]["switchboard.connection"] == "erp"
    assert call["attrs"]["switchboard.outcome"] == "ok"
    assert child_of("done", "slack chat.postMessage"), "the post step's Slack call"
