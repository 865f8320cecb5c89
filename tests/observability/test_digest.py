"""The digest step end to end: numbers posted to a channel, a PNG chart in its thread."""

from __future__ import annotations

import asyncio
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.observability.seed import seed_week
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.ports import ChatFile
from workflows.steps.digest import CHART_HEIGHT, CHART_WIDTH
from workflows.tables import RunRow

DIGEST = """\
name: weekly-digest
triggers:
  - command: digest
steps:
  - id: report
    digest: {channel: "#finance-approvals", period: week}
"""


def png_size(content: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking signature and CRC."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", content[8:16])
    assert (length, kind) == (13, b"IHDR")
    (crc,) = struct.unpack(">I", content[29:33])
    assert zlib.crc32(content[12:29]) == crc, "IHDR is corrupt"
    width, height = struct.unpack(">II", content[16:24])
    return width, height


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        parts.append(str(block))
    return "\n".join(parts)


async def digest_message(harness: Harness, starts_with: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        messages = harness.slack.messages("finance-approvals")
        return next((m for m in messages if m.get("text", "").startswith(starts_with)), None)

    return await harness.slack.wait_for(find, timeout=30, message="no digest posted")


async def test_weekly_digest_posts_the_numbers_and_a_chart(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "digest.yaml").write_text(DIGEST)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        alice, carol = slack.user_id("alice"), slack.user_id("carol")
        await seed_week(harness.runtime.store, datetime.now(UTC), alice, carol)
        assert (await slack.slash_command("alice", "general", "digest")).ok

        message = await digest_message(harness, "Weekly digest:")
        files = await slack.wait_for(slack.files, timeout=30, message="no chart uploaded")

    assert message["text"] == ("Weekly digest: 7 requests, median cycle 55m, 1 approval pending")
    shown = text_of(message)
    assert "7 (6 finished)" in shown
    assert "median 55m · p90 2h 30m" in shown
    assert "1 (17% of finished)" in shown, "failures"
    assert "50% of 2 routed" in shown, "triage share"
    assert "*purchase*: 5 — 3 succeeded · 1 failed · 1 waiting" in shown
    assert "*access*: 2 — 2 succeeded" in shown
    assert "run `p5` · waiting 5h on " in shown
    assert f"<@{alice}>, <@{carol}>" in shown, "who the approval waits on"
    assert "weekly-digest" not in shown, "a digest does not count its own runs"

    (chart,) = files
    assert chart["name"].endswith(".png")
    assert message["channel"] in chart["channels"]
    content = slack.file_content(chart["id"])
    assert content is not None
    assert png_size(content) == (CHART_WIDTH, CHART_HEIGHT)


async def test_an_empty_week_is_one_line_without_a_chart(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "digest.yaml").write_text(DIGEST)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        assert (await harness.slack.slash_command("alice", "general", "digest")).ok
        message = await digest_message(harness, "Weekly digest: nothing to report")
        root = await harness.root_message("general", "weekly-digest")
        await harness.thread_of("general", root, replies=1)
        assert harness.slack.files() == []
    assert "Nothing to report for the past week (" in text_of(message)
    assert len(message["blocks"]) == 1


async def finished_digest_run(harness: Harness) -> str:
    """The digest run's id once it succeeded (its chart's record committed before that)."""
    for _ in range(300):
        async with harness.runtime.store.read() as session:
            run = await session.scalar(select(RunRow).where(RunRow.workflow == "weekly-digest"))
        if run is not None and run.status == "succeeded":
            return run.id
        await asyncio.sleep(0.1)
    raise AssertionError("the digest run did not succeed")


async def test_a_file_goes_through_the_outbox_once_per_key(
    database: Database, tmp_path: Path
) -> None:
    """The chart is keyed like a message: sharing it again under the same key (a re-executed
    digest step) uploads nothing; another key is another file."""
    (tmp_path / "digest.yaml").write_text(DIGEST)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await seed_week(
            harness.runtime.store, datetime.now(UTC), slack.user_id("alice"), slack.user_id("carol")
        )
        assert (await slack.slash_command("alice", "general", "digest")).ok
        message = await digest_message(harness, "Weekly digest:")
        run_id = await finished_digest_run(harness)
        outbox = harness.runtime.engine.outbox
        again = ChatFile(f"digest-{run_id}.png", b"\x89PNG again", "again")
        channel, ts = message["channel"], message["ts"]
        await outbox.upload(run_id, "report", "chart", channel, again, thread_ts=ts)
        assert len(slack.files()) == 1, "the same key is not uploaded twice"
        other = ChatFile("other.png", b"\x89PNG other", "other")
        await outbox.upload(run_id, "report", "chart-2", channel, other, thread_ts=ts)
        names = sorted(f["name"] for f in slack.files())
    assert names == [f"digest-{run_id}.png", "other.png"]
