"""Replayed Slack requests: the identical signed bytes posted again inside the 5-minute window.

Slack's signature proves who sent a request, not that it is new; a captured `/flow` body
replayed within the window must not start, cancel or retry anything a second time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bot.runtime import build_runtime
from bot.server import create_asgi
from sandbox.slack import signed_headers
from tests.routing.test_routing_end_to_end import SEED as ROUTING_SEED
from tests.routing.test_routing_end_to_end import first_message, write
from tests.support.harness import SIGNING_SECRET, Harness, running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.tables import AuditRow, ExampleRow, RequestRow, RunRow

FLAKY = 'name: flaky\nsteps:\n  - id: check\n    fail: "nope {{ input.text }}"\n'
SLOW = "name: slow\nsteps:\n  - id: pause\n    wait: {duration: 1h}\n"
SHORTCUT = (
    "name: forward\ntriggers:\n  - shortcut: true\n"
    'steps:\n  - id: say\n    post: {text: "got {{ input.text }}"}\n'
)


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    for name, text in (("flaky", FLAKY), ("slow", SLOW), ("forward", SHORTCUT)):
        (tmp_path / f"{name}.yaml").write_text(text)
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


async def post_form(harness: Harness, body: bytes, bot_url: str | None = None) -> httpx.Response:
    """One signed delivery of exactly these bytes, as Slack (or an attacker replaying it) sends."""
    headers = signed_headers(SIGNING_SECRET, body) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    url = f"{bot_url or harness.bot_url}/slack/events"
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers)


@contextlib.asynccontextmanager
async def second_process(harness: Harness) -> AsyncIterator[str]:
    """Another bot process (its own runtime and memory) on the same database; yields its URL."""
    runtime = build_runtime(harness.settings, run_workers=1)
    async with serve_asgi(create_asgi(runtime)) as url:
        yield url


async def flow_body(harness: Harness, user: str, text: str) -> tuple[bytes, str]:
    """Run `/flow <text>` once through the emulator; return its form as bytes and the answer."""
    result = await harness.slack.slash_command(user, "general", text)
    assert result.ok, result.body
    return urlencode(result.payload).encode(), result.body


async def count(harness: Harness, model: Any, *where: Any) -> int:
    async with harness.runtime.store.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def wait_status(harness: Harness, run_id: str, status: str) -> None:
    async def reached() -> bool:
        async with harness.runtime.store.transaction() as session:
            run = await session.get(RunRow, run_id)
        return run is not None and run.status == status

    await harness.slack.wait_for(reached, timeout=15, message=f"run never {status}")


def run_id_in(answer: str) -> str:
    return answer.split("run `", 1)[1].split("`", 1)[0]


async def test_replayed_flow_start_starts_one_run_and_names_it(harness: Harness) -> None:
    body, first = await flow_body(harness, "alice", "start slow once")
    run_id = run_id_in(first)
    replies = [await post_form(harness, body) for _ in range(3)]
    assert all(reply.status_code == 200 for reply in replies)
    assert all(run_id in reply.text for reply in replies), "a replay names the existing run"
    assert await count(harness, RunRow) == 1
    assert await count(harness, RequestRow) == 1


async def test_two_real_commands_with_the_same_text_start_two_runs(harness: Harness) -> None:
    await flow_body(harness, "alice", "start slow same")
    await flow_body(harness, "alice", "start slow same")
    assert await count(harness, RunRow) == 2, "dedupe is by trigger_id, not by text"


async def test_replayed_retry_does_not_retry_twice(harness: Harness) -> None:
    _, started = await flow_body(harness, "alice", "start flaky x")
    run_id = run_id_in(started)
    await wait_status(harness, run_id, "failed")
    body, answer = await flow_body(harness, "alice", f"retry {run_id}")
    assert "Retrying" in answer
    await wait_status(harness, run_id, "failed")  # the step fails again at once
    reply = await post_form(harness, body)
    assert reply.status_code == 200
    assert "already" in reply.text
    retried = AuditRow.action == "run.retried"
    assert await count(harness, AuditRow, retried) == 1, "the replay retried the run again"


async def test_a_retry_replayed_to_another_process_acts_once(harness: Harness) -> None:
    _, started = await flow_body(harness, "alice", "start flaky z")
    run_id = run_id_in(started)
    await wait_status(harness, run_id, "failed")
    body, answer = await flow_body(harness, "alice", f"retry {run_id}")
    assert "Retrying" in answer
    await wait_status(harness, run_id, "failed")  # failed again: a retry is allowed by state
    async with second_process(harness) as other:
        reply = await post_form(harness, body, other)
    assert reply.status_code == 200
    assert "already handled" in reply.text, reply.text
    retried = AuditRow.action == "run.retried"
    assert await count(harness, AuditRow, retried) == 1, "the other process retried again"


async def test_a_cancel_replayed_to_another_process_acts_once(harness: Harness) -> None:
    _, started = await flow_body(harness, "alice", "start slow w")
    run_id = run_id_in(started)
    body, answer = await flow_body(harness, "alice", f"cancel {run_id}")
    assert "Cancelled" in answer
    async with second_process(harness) as other:
        reply = await post_form(harness, body, other)
    assert reply.status_code == 200 and "already handled" in reply.text, reply.text
    cancelled = AuditRow.action == "run.cancelled"
    assert await count(harness, AuditRow, cancelled) == 1


async def test_replayed_cancel_does_not_act_twice(harness: Harness) -> None:
    _, started = await flow_body(harness, "alice", "start slow y")
    run_id = run_id_in(started)
    body, answer = await flow_body(harness, "alice", f"cancel {run_id}")
    assert "Cancelled" in answer
    for _ in range(2):
        reply = await post_form(harness, body)
        assert reply.status_code == 200 and "already" in reply.text
    cancelled = AuditRow.action == "run.cancelled"
    assert await count(harness, AuditRow, cancelled) == 1


async def test_replayed_shortcut_starts_one_run(harness: Harness) -> None:
    slack = harness.slack
    message = await slack.user_posts("bob", "general", "please look at this")
    first = await slack.message_shortcut("alice", "general", message["ts"])
    assert first.ok
    body = urlencode({"payload": json.dumps(first.payload)}).encode()
    for _ in range(3):
        assert (await post_form(harness, body)).status_code == 200
    assert await count(harness, RunRow) == 1


@pytest.fixture
async def triage(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    folder = write(tmp_path, min_confidence=0.99)  # every request goes to #triage
    async with running_bot(database, workflows_dir=folder, seed=ROUTING_SEED) as running:
        yield running


async def test_replayed_triage_pick_records_one_decision(triage: Harness) -> None:
    slack = triage.slack
    await slack.user_posts("alice", "requests", "my invoice page shows an error")
    card = await first_message(triage, "triage")
    pick = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["value"].endswith("|tech")
    )
    first = await slack.click(
        "dave", card["ts"], pick["action_id"], pick["value"], channel="triage"
    )
    assert first.ok
    body = urlencode({"payload": json.dumps(first.payload)}).encode()
    for _ in range(2):
        assert (await post_form(triage, body)).status_code == 200
    assert await count(triage, ExampleRow) == 1, "a replayed pick stored another example"
    picked = AuditRow.action == "route.triage"
    assert await count(triage, AuditRow, picked) == 1
