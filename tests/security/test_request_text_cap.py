"""Request texts are capped (a risk the review found): an over-long `/flow` is refused and
stores nothing; text from any other trigger (a channel message, a webhook's ``text``, a
reacted message the bot reads later) is stored cut to the limit, once per place."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.request_text import MAX_REQUEST_CHARS
from connectors.webhook_out import sign
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RequestRow, RunRow

WATCHER = (
    'name: watcher\ntriggers:\n  - message: {channel: "#general"}\n'
    "  - reaction: {emoji: eyes, channel: '#ap-inbox'}\n"
    "  - webhook: {secret_env: TEST_TEXT_CAP_HOOK_SECRET}\n"
    'steps:\n  - id: note\n    set: {seen: "{{ input.text | length }}"}\n'
)
HOOK_SECRET = "text-cap-hook-secret-0c1d"


@pytest.fixture
async def harness(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("TEST_TEXT_CAP_HOOK_SECRET", HOOK_SECRET)
    (tmp_path / "watcher.yaml").write_text(WATCHER)
    (tmp_path / "hello.yaml").write_text("name: hello\nsteps:\n  - id: s\n    set: {a: 1}\n")
    async with running_bot(database, workflows_dir=tmp_path, run_workers=0) as running:
        yield running


@pytest.fixture
async def working(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    """With a worker: a reaction's text is read by the run's first job."""
    (tmp_path / "watcher.yaml").write_text(WATCHER)
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


async def stored(harness: Harness) -> tuple[int, int]:
    async with harness.runtime.store.transaction() as session:
        requests = await session.scalar(select(func.count()).select_from(RequestRow))
        runs = await session.scalar(select(func.count()).select_from(RunRow))
    return int(requests or 0), int(runs or 0)


@pytest.mark.parametrize("size", [MAX_REQUEST_CHARS + 1, 1_000_000])
async def test_over_long_flow_text_is_refused_and_stores_nothing(
    harness: Harness, size: int
) -> None:
    text = "start hello " + "x" * (size - len("start hello "))
    result = await harness.slack.slash_command("alice", "random", text)
    assert result.status == 200
    assert f"the limit is {MAX_REQUEST_CHARS:,}" in result.body
    assert len(result.body) < 1000, "the refusal is a one-liner, not an echo of the text"
    assert await stored(harness) == (0, 0)
    assert harness.slack.messages("random") == []


async def test_flow_text_at_the_limit_starts_a_run(harness: Harness) -> None:
    text = "start hello " + "x" * (MAX_REQUEST_CHARS - len("start hello "))
    result = await harness.slack.slash_command("alice", "random", text)
    assert "Started" in result.body
    assert await stored(harness) == (1, 1)


async def test_over_long_channel_message_is_stored_cut_to_the_limit(harness: Harness) -> None:
    await harness.slack.user_posts("alice", "general", "y" * (MAX_REQUEST_CHARS * 3))
    async with harness.runtime.store.transaction() as session:
        request = (await session.scalars(select(RequestRow))).one()
        run = (await session.scalars(select(RunRow))).one()
    assert len(request.text) == MAX_REQUEST_CHARS and request.text.endswith("[…]")
    assert len(run.context["input"]["text"]) == MAX_REQUEST_CHARS


async def test_a_webhook_text_is_stored_cut_to_the_limit(harness: Harness) -> None:
    body = json.dumps({"text": "w" * (MAX_REQUEST_CHARS * 3)}).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
    }
    async with httpx.AsyncClient(base_url=harness.bot_url) as http:
        response = await http.post("/hooks/watcher", content=body, headers=headers)
    assert response.status_code == 200, response.text
    async with harness.runtime.store.transaction() as session:
        request = (await session.scalars(select(RequestRow))).one()
        run = (await session.scalars(select(RunRow))).one()
    assert len(request.text) == MAX_REQUEST_CHARS and request.text.endswith("[…]")
    assert run.context["input"]["text"] == request.text


async def test_a_reacted_message_is_read_cut_to_the_limit(working: Harness) -> None:
    slack = working.slack
    posted = await slack.user_posts("carol", "ap-inbox", "z" * (MAX_REQUEST_CHARS + 500))
    await slack.add_reaction("alice", "ap-inbox", posted["ts"], "eyes")

    async def finished() -> RunRow | None:
        async with working.runtime.store.transaction() as session:
            run = (await session.scalars(select(RunRow))).first()
        return run if run is not None and run.status == "succeeded" else None

    run = await slack.wait_for(finished, timeout=15, message="the reaction's run did not finish")
    assert len(run.context["input"]["text"]) == MAX_REQUEST_CHARS
    assert run.context["steps"]["note"]["seen"] == MAX_REQUEST_CHARS
