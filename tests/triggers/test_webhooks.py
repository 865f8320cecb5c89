"""Signed webhooks through real HTTP against the running bot (and the Slack emulator)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.webhooks import MAX_BODY_BYTES, MAX_JSON_DEPTH
from connectors.webhook_out import sign
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from tests.triggers.conftest import run_input, runs_of
from workflows.tables import RunRow

SECRET = "whsec-test-5b1e"
OLD_SECRET = "whsec-old-77a0"

DEPLOY = """
name: deploy-notice
title: Deploy notice
channel: "#general"
triggers:
  - webhook: {secret_env: TEST_DEPLOY_SECRET, idempotency_field: delivery.id}
  - webhook: {secret_env: TEST_DEPLOY_OLD_SECRET}
steps:
  - id: tell
    post:
      text: "Deployed {{ input.service }} {{ input.body.version }}"
"""

UNCONFIGURED = """
name: unconfigured
triggers:
  - webhook: {secret_env: TEST_NEVER_SET_SECRET}
steps:
  - id: s
    set: {a: 1}
"""


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The composition root reads the secrets definitions name from the process environment.
    monkeypatch.setenv("TEST_DEPLOY_SECRET", SECRET)
    monkeypatch.setenv("TEST_DEPLOY_OLD_SECRET", OLD_SECRET)
    monkeypatch.delenv("TEST_NEVER_SET_SECRET", raising=False)


@pytest.fixture
def workflows_dir(tmp_path: Path, secrets_env: None) -> Path:
    (tmp_path / "deploy.yaml").write_text(DEPLOY)
    (tmp_path / "unconfigured.yaml").write_text(UNCONFIGURED)
    (tmp_path / "hello.yaml").write_text(
        "name: hello\ntriggers: [{command: hello}]\nsteps: [{id: s, set: {a: 1}}]\n"
    )
    return tmp_path


@dataclass
class Bot:
    harness: Harness
    http: httpx.AsyncClient

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str | bytes]
    ) -> httpx.Response:
        return await self.http.post(path, content=body, headers=headers)


@contextlib.asynccontextmanager
async def bot_at(database: Database, workflows_dir: Path, workers: int) -> AsyncIterator[Bot]:
    async with (
        running_bot(
            database, workflows_dir=workflows_dir, run_workers=workers, SWITCHBOARD_SCHEDULER=False
        ) as harness,
        httpx.AsyncClient(base_url=harness.bot_url) as http,
    ):
        yield Bot(harness, http)


@pytest.fixture
async def bot(database: Database, workflows_dir: Path) -> AsyncIterator[Bot]:
    async with bot_at(database, workflows_dir, workers=1) as running:
        yield running


@pytest.fixture
async def ack_only(database: Database, workflows_dir: Path) -> AsyncIterator[Bot]:
    """The HTTP edge alone: runs are recorded, no worker executes them."""
    async with bot_at(database, workflows_dir, workers=0) as running:
        yield running


def signed(
    body: bytes, *, secret: str = SECRET, timestamp: int | None = None, key: str | None = None
) -> dict[str, str]:
    sent_at = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(secret, sent_at, body),
    } | ({"Idempotency-Key": key} if key else {})


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


async def run_count(harness: Harness) -> int:
    async with harness.runtime.store.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)


async def test_a_signed_delivery_starts_a_run_that_posts_in_the_workflow_channel(
    bot: Bot,
) -> None:
    body = encode({"service": "billing", "version": "v42", "delivery": {"id": "d-1"}})
    response = await bot.post("/hooks/deploy-notice", body, signed(body))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["duplicate"] is False
    root = await bot.harness.root_message("general", "deploy-notice")
    thread = await bot.harness.thread_of("general", root, replies=1)
    assert "Deployed billing v42" in thread[1]["text"]
    [(run, request)] = await runs_of(bot.harness.runtime.store, "deploy-notice")
    assert run.id == answer["run_id"]
    assert request.source == "webhook"
    assert run_input(run)["body"]["delivery"] == {"id": "d-1"}

    # A secret being rotated out (the workflow's second webhook trigger) is still accepted.
    body = encode({"service": "web", "version": "v3"})
    response = await bot.post("/hooks/deploy-notice", body, signed(body, secret=OLD_SECRET))
    assert response.status_code == 200, response.text


async def test_a_repeated_delivery_answers_the_same_run_and_starts_nothing(
    ack_only: Bot,
) -> None:
    bot = ack_only
    first_body = encode({"service": "api", "version": "v1"})
    second_body = encode({"service": "api", "version": "v1", "retry": 1})
    by_header = [
        await bot.post("/hooks/deploy-notice", body, signed(body, key="abc"))
        for body in (first_body, second_body, first_body)
    ]
    # No header: the declared body field delivery.id names the delivery.
    field_body = encode({"service": "api", "version": "v2", "delivery": {"id": 7}})
    by_field = [
        await bot.post("/hooks/deploy-notice", field_body, signed(field_body)) for _ in range(2)
    ]

    assert [r.status_code for r in by_header + by_field] == [200] * 5
    assert [r.json()["duplicate"] for r in by_header] == [False, True, True]
    assert len({r.json()["run_id"] for r in by_header}) == 1
    assert [r.json()["duplicate"] for r in by_field] == [False, True]
    assert by_field[0].json()["run_id"] == by_field[1].json()["run_id"]
    assert await run_count(bot.harness) == 2
    dedupe_keys = {
        request.dedupe_key
        for _, request in await runs_of(bot.harness.runtime.store, "deploy-notice")
    }
    assert dedupe_keys == {"webhook:deploy-notice:abc", "webhook:deploy-notice:7"}


async def test_rejected_deliveries_answer_one_json_line_and_start_nothing(
    ack_only: Bot,
) -> None:
    bot = ack_only
    good = encode({"service": "x", "version": "1", "delivery": {"id": "r"}})
    now = int(time.time())
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    quotes = b'{"a": [' + b"[]," * 70 + b'"' + b'\\"' * 100_000  # 70 brackets: scanned
    too_deep = b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    cases: list[tuple[str, str, bytes, Mapping[str, str | bytes], int, str]] = [
        (
            "bad signature",
            "/hooks/deploy-notice",
            good,
            signed(good, secret="wrong"),
            401,
            "signature",
        ),
        (
            "stale timestamp",
            "/hooks/deploy-notice",
            good,
            signed(good, timestamp=now - 301),
            401,
            "5 minutes",
        ),
        (
            "future timestamp",
            "/hooks/deploy-notice",
            good,
            signed(good, timestamp=now + 600),
            401,
            "5 minutes",
        ),
        (
            "no signature",
            "/hooks/deploy-notice",
            good,
            {"Content-Type": "application/json"},
            401,
            "missing",
        ),
        (
            "body changed after signing",
            "/hooks/deploy-notice",
            good + b" ",
            signed(good),
            401,
            "signature",
        ),
        (
            "malformed JSON",
            "/hooks/deploy-notice",
            b'{"service": ',
            signed(b'{"service": '),
            400,
            "not valid JSON",
        ),
        ("not an object", "/hooks/deploy-notice", b"[1, 2]", signed(b"[1, 2]"), 400, "JSON object"),
        (
            "NaN",
            "/hooks/deploy-notice",
            b'{"v": NaN}',
            signed(b'{"v": NaN}'),
            400,
            "not valid JSON",
        ),
        ("no idempotency field", "/hooks/deploy-notice", b"{}", signed(b"{}"), 400, "delivery.id"),
        ("nested 100k deep", "/hooks/deploy-notice", deep, signed(deep), 400, "nested deeper"),
        # Linear-time depth scan: an unterminated string of escaped quotes, 200 KiB of them.
        ("unterminated string", "/hooks/deploy-notice", quotes, signed(quotes), 400, "not valid"),
        ("nested just too deep", "/hooks/deploy-notice", too_deep, signed(too_deep), 400, "deeper"),
        (
            "non-ASCII signature",
            "/hooks/deploy-notice",
            good,
            signed(good) | {"X-Switchboard-Signature": "sha256=\u00e9".encode()},
            401,
            "signature",
        ),
        (
            "non-ASCII digits in the timestamp",
            "/hooks/deploy-notice",
            good,
            signed(good) | {"X-Switchboard-Timestamp": b"\xb2\xb3"},
            401,
            "signature",
        ),
        ("unknown workflow", "/hooks/nope", good, signed(good), 404, "nope"),
        ("no webhook trigger", "/hooks/hello", good, signed(good), 404, "hello"),
        ("secret not set", "/hooks/unconfigured", good, signed(good), 503, "not configured"),
    ]
    for name, path, body, headers, status, words in cases:
        response = await bot.post(path, body, headers)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        assert "\n" not in response.text.strip(), name
        assert words in response.json()["error"], f"{name}: {response.json()}"
    assert await run_count(bot.harness) == 0

    # Over the documented limit: refused whether the size is declared or streamed chunked.
    payload = encode({"service": "x", "padding": "a" * MAX_BODY_BYTES, "delivery": {"id": 1}})
    declared = await bot.post("/hooks/deploy-notice", payload, signed(payload))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    streamed = await bot.http.post(
        "/hooks/deploy-notice", content=chunks(), headers=signed(payload)
    )
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "262144 bytes" in declared.json()["error"]
    assert await run_count(bot.harness) == 0

    at_limit = encode({"delivery": {"id": 2}, "p": ""})
    at_limit = encode({"delivery": {"id": 2}, "p": "a" * (MAX_BODY_BYTES - len(at_limit))})
    assert len(at_limit) == MAX_BODY_BYTES
    accepted = await bot.post("/hooks/deploy-notice", at_limit, signed(at_limit))
    assert accepted.status_code == 200, accepted.text
