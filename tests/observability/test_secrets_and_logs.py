"""Secrets never leave the process: not in logs, thread messages, the audit export or /metrics.

Planted: secrets in settings and in the environment (one not shaped like a
token, so only ``Settings.secrets()`` can know it), and credentials typed into
a request. The logs are JSON lines at DEBUG (Bolt's and slack_sdk's own chatter
included) and carry the request's and the job's context.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn

from bot.logs import REDACTED, Scrubber, configure_logging, scrub_tokens
from bot.serve import server_config
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET, running_bot
from tests.support.servers import free_port
from tests.support.stores import Database
from workflows import audit

IN_ENV = "planted-openai-secret-7c1f9a"  # not token-shaped: only Settings.secrets() knows it
# Also planted, through settings by the harness: BOT_TOKEN and SIGNING_SECRET (not token-shaped).
PASTED = "xoxb-1111-2222-PLANTEDPASTEDTOKEN"
BEARER = "planted.bearer.credential"

LEAKY = f"""\
name: leaky
triggers:
  - command: leaky
steps:
  - id: echo
    post:
      text: "you said {{{{ input.text }}}}; our key is {IN_ENV}"
"""


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


async def test_planted_secrets_never_appear(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: io.StringIO,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", IN_ENV)
    (tmp_path / "leaky.yaml").write_text(LEAKY)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        settings = harness.runtime.settings
        assert {IN_ENV, BOT_TOKEN, SIGNING_SECRET} <= set(settings.secrets())
        configure_logging(
            level="DEBUG", fmt="json", secrets=settings.secrets(), stream=captured_logs
        )
        logging.getLogger("tests").warning(
            "careless: %s %s", IN_ENV, SIGNING_SECRET, extra={"token": BOT_TOKEN}
        )
        text = f"leaky {PASTED} with Bearer {BEARER}"
        assert (await harness.slack.slash_command("alice", "general", text)).ok
        root = await harness.root_message("general", "started leaky")
        thread = await harness.thread_of("general", root, replies=2)

        async def audited() -> bool:
            lines = [line async for line in audit.export(harness.runtime.store, fmt="jsonl")]
            return any('"run.succeeded"' in line for line in lines)

        await harness.slack.wait_for(audited, timeout=10, message="the run did not finish")
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{harness.bot_url}/metrics")).text
        exported = [line async for line in audit.export(harness.runtime.store, fmt="jsonl")]
        exported += [line async for line in audit.export(harness.runtime.store, fmt="csv")]
        messages = json.dumps(harness.slack.messages("general", include_replies=True))

    logs = captured_logs.getvalue()
    everything = {
        "logs": logs,
        "messages": messages,
        "audit": "".join(exported),
        "metrics": metrics,
    }
    for secret in (IN_ENV, PASTED, BEARER, BOT_TOKEN, SIGNING_SECRET):
        for where, output in everything.items():
            assert secret not in output, f"{secret} leaked into {where}"

    posted = next(m for m in thread if m["text"].startswith("you said"))
    # The label stays ("Bearer "), its value goes: the text keeps its meaning.
    assert posted["text"] == f"you said {REDACTED} with Bearer {REDACTED}; our key is {REDACTED}"
    assert len(exported) > 2, "the audit trail has the run's records"

    records = [json.loads(line) for line in logs.splitlines()]
    assert any(r["event"] == f"careless: {REDACTED} {REDACTED}" for r in records)
    assert any(r.get("token") == REDACTED for r in records), "extra= fields are scrubbed too"
    run_id = root["text"].split("`")[1] if "`" in root["text"] else None
    in_job = [r for r in records if r.get("step_id") == "echo"]
    assert in_job, "log records inside the job carry its context"
    assert all(r["workflow"] == "leaky" and r["run_id"] for r in in_job)
    assert run_id is None or any(r["run_id"] == run_id for r in in_job)
    in_request = [r for r in records if r.get("trigger") == "command"]
    assert in_request and all(
        r.get("user_id") == harness.slack.user_id("alice") for r in in_request
    )


def test_scrubber_rules() -> None:
    scrub = Scrubber(["s3cr3t-value", "ab"])
    assert scrub.text("x s3cr3t-value y") == f"x {REDACTED} y"
    assert scrub.text("ab cd") == "ab cd", "too short to be a secret worth garbling logs for"
    assert scrub.value({"a": ["s3cr3t-value", 1, None]}) == {"a": [REDACTED, 1, None]}
    for token in (
        "xoxb-123-456-abcdefABCDEF",
        "xoxp-1-2-3-abcdef",
        "xapp-1-A111-222-abcdef",
        "sk-proj-abcdefghijklmnop1234",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ):
        assert scrub_tokens(f"before {token} after") == f"before {REDACTED} after", token
    assert scrub_tokens("Bearer eyJhbGciOi.payload.sig") == f"Bearer {REDACTED}"
    untouched = "PO-4411 for $1,200.00 on 2026-03-02, ticket OPS-12, sk-short"
    assert scrub_tokens(untouched) == untouched


async def test_uvicorn_error_lines_are_json_and_scrubbed(
    captured_logs: io.StringIO, capfd: pytest.CaptureFixture[str]
) -> None:
    planted = "planted-uvicorn-secret-4b7e"
    aws = "AKIAIOSFODNN7EXAMPLE"

    async def crashing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise RuntimeError(f"handler saw {planted} and {aws}")

    configure_logging(level="INFO", fmt="json", secrets=[planted], stream=captured_logs)
    uvicorn.Config(crashing_app)  # a default-configured server earlier in the process
    port = free_port()
    server = uvicorn.Server(server_config(crashing_app, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise the start-up error
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 500
    finally:
        server.should_exit = True
        await task

    records = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    crashes = [r for r in records if r["event"].strip() == "Exception in ASGI application"]
    assert crashes, "uvicorn's error line bypassed our JSON, scrubbed log chain"
    crash = crashes[0]
    assert crash["logger"] == "uvicorn.error"
    assert f"handler saw {REDACTED} and {REDACTED}" in crash["exception"]
    everything = captured_logs.getvalue() + "".join(capfd.readouterr())
    assert planted not in everything and aws not in everything
