"""What ``switchboard test`` puts in place of the AI and the business systems.

``RecordedAI`` answers from a test's recorded answers (by kind, in call order) and hands
any call without one to the offline provider. ``StubSystems`` is a real HTTP server on
loopback: every http connection a workflow uses points at it, so requests go through the
real connector (URL confinement, idempotency keys) and each is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from connectors.ai.base import (
    AIProvider,
    Candidate,
    Classification,
    ClassifyRequest,
    Extraction,
    ExtractRequest,
    Provenance,
    SummarizeRequest,
    Summary,
)
from workflows.language.workflow_tests import Fixtures, StubResponse

RECORDED = Provenance(provider="recorded", model="fixtures", prompt_version="test")
Scalar = str | int | float | bool | None


class RecordedAI:
    """An ``AIProvider`` over recorded answers; the rest go to ``fallback``."""

    def __init__(self, fixtures: Fixtures, fallback: AIProvider) -> None:
        self._answers = [dict(answer) for answer in fixtures.ai]
        self._fallback = fallback

    @property
    def name(self) -> str:
        return "recorded"

    def _next(self, kind: str) -> Any:
        for answer in self._answers:
            if kind in answer:
                self._answers.remove(answer)
                return answer[kind]
        return None

    async def classify(self, request: ClassifyRequest) -> Classification:
        answer = self._next("classify")
        if answer is None:
            return await self._fallback.classify(request)
        label, confidence = (
            (str(answer["label"]), float(answer.get("confidence", 1.0)))
            if isinstance(answer, Mapping)
            else (str(answer), 1.0)
        )
        return Classification(
            label=label,
            confidence=confidence,
            candidates=[Candidate(label=label, confidence=confidence)],
            provenance=RECORDED,
        )

    async def extract(self, request: ExtractRequest) -> Extraction:
        answer = self._next("extract")
        if answer is None:
            return await self._fallback.extract(request)
        recorded = dict(answer) if isinstance(answer, Mapping) else {}
        values = {spec.name: _scalar(recorded.get(spec.name)) for spec in request.fields}
        missing = [s.name for s in request.fields if s.required and values[s.name] is None]
        return Extraction(values=values, missing=missing, method="model", provenance=RECORDED)

    async def summarize(self, request: SummarizeRequest) -> Summary:
        answer = self._next("summarize")
        if answer is None:
            return await self._fallback.summarize(request)
        return Summary(text=str(answer), provenance=RECORDED)

    async def aclose(self) -> None:
        await self._fallback.aclose()


def _scalar(value: Any) -> Scalar:
    # YAML reads 2026-03-31 as a date: the AI would have answered text.
    return value if isinstance(value, Scalar) else str(value)


@dataclass(frozen=True)
class OutboundCall:
    connection: str
    method: str
    path: str
    query: str
    body: Any
    status: int

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        body = f" {json.dumps(self.body, default=str)}" if self.body is not None else ""
        return f"{self.connection}: {self.method} {self.path}{query}{body} -> {self.status}"


Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class StubSystems:
    """Every stubbed connection under ``/<connection>/…`` of one loopback server."""

    def __init__(self, fixtures: Fixtures) -> None:
        self._responses = {name: list(items) for name, items in fixtures.connections.items()}
        self.calls: list[OutboundCall] = []

    def _answer(self, connection: str, method: str, path: str) -> StubResponse:
        for response in self._responses.get(connection, []):
            if response.method not in (None, method) or response.path not in (None, path):
                continue
            self._responses[connection].remove(response)
            return response
        return StubResponse()  # not recorded: 200 with an empty body

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        _, connection, *rest = scope["path"].split("/", 2)
        path = "/" + (rest[0] if rest else "")
        response = self._answer(connection, scope["method"], path)
        try:
            sent = json.loads(body) if body else None
        except ValueError:
            sent = body.decode("utf-8", "replace")
        query = scope.get("query_string", b"").decode()
        call = OutboundCall(connection, scope["method"], path, query, sent, response.status)
        self.calls.append(call)
        payload = json.dumps(response.json_body if response.json_body is not None else {})
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload.encode()})


@contextlib.asynccontextmanager
async def serving(app: StubSystems) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port until the block exits; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    config.load()
    sockets = [config.bind_socket()]
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the stub server stopped before it started")
            await asyncio.sleep(0.01)
        host, port = sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
