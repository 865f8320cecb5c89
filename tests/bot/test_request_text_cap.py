"""Request texts are capped: an over-long `/flow` is refused and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.request_text import MAX_REQUEST_CHARS
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RequestRow, RunRow

WATCHER = (
    'name: watcher\ntriggers:\n  - message: {channel: "#general"}\n'
    'steps:\n  - id: note\n    set: {seen: "{{ input.text | length }}"}\n'
)


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "watcher.yaml").write_text(WATCHER)
    (tmp_path / "hello.yaml").write_text("name: hello\nsteps:\n  - id: s\n    set: {a: 1}\n")
    async with running_bot(database, workflows_dir=tmp_path, run_workers=0) as running:
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
