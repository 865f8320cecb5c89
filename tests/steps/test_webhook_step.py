"""The ``webhook`` step: a signed POST whose every delivery — retried in process and by the
engine — carries the one Idempotency-Key ``run:step``, so the receiver applies it once."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.webhook_out import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.steps.support import finished_run, write_folder
from tests.support.harness import running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.language.steps.connectors import WebhookStep

SECRET = "hook-secret-for-the-receiver"
NOTIFY = """\
name: notify
title: Notify
channel: "#general"
triggers: [{command: notify}]
steps:
  - id: tell
    webhook:
      connection: partner
      json: {order: "{{ input.text }}", run: "{{ run.id }}"}
    retry: {attempts: 3, initial: 0.1, jitter: false}
"""


class Receiver:
    """Checks signatures; fails the first ``failures`` deliveries (503); applies a key once."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.keys: list[str | None] = []
        self.applied: dict[str, bytes] = {}

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        signed = verify(
            SECRET,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        if not signed:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.headers.get("idempotency-key")
        self.keys.append(key)
        if len(self.keys) <= self.failures:
            return JSONResponse({"error": "busy"}, status_code=503)
        if key is not None:
            self.applied.setdefault(key, body)
        return JSONResponse({"accepted": len(self.applied)})


async def test_every_delivery_of_a_webhook_step_carries_one_idempotency_key(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_SECRET", SECRET)
    receiver = Receiver(failures=3)
    async with serve_asgi(receiver.app) as url:
        connections = (
            "connections:\n  partner:\n    type: webhook_out\n"
            f"    url: {url}/hook\n    secret_env: PARTNER_SECRET\n"
            "    retry: {attempts: 2, backoff_initial_s: 0.05, jitter_s: 0}\n"
        )
        folder = write_folder(
            tmp_path / "wf", {"notify.yaml": NOTIFY, "connections.yaml": connections}
        )
        async with running_bot(database, workflows_dir=folder) as harness:
            assert not harness.runtime.definition_errors, harness.runtime.definition_errors
            await harness.slack.slash_command("alice", "general", "notify PO-4")
            run = await finished_run(harness, "notify", timeout=30)

    assert run.status == "succeeded", run.error
    assert receiver.keys == [f"{run.id}:tell"] * 4  # 2 in process, then the step's retry
    assert list(receiver.applied) == [f"{run.id}:tell"]
    assert run.context["steps"]["tell"]["idempotency_key"] == f"{run.id}:tell"
    assert run.context["steps"]["tell"]["data"] == {"accepted": 1}
    assert set(run.context["steps"]["tell"]) <= set(WebhookStep.OUTPUT)
