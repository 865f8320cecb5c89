"""Slack pushes back (429 + Retry-After, 5xx bursts): every message still arrives exactly once.

The whole bot runs against the Slack emulator; the emulator answers the bot's
``chat.postMessage`` calls with scripted faults. The faults are answered
before anything is posted (as Slack does for 429 and most 5xx), so a retry is
safe, and the bot must retry rather than drop or double-post.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_WORKFLOWS
from sandbox.slack import Fault
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import RunRow

pytestmark = pytest.mark.slow

RUNS = 3
MESSAGES_PER_RUN = 3  # root, run card (compact thread), reply post


async def test_429_and_5xx_bursts_lose_and_repeat_nothing(
    database: Database, tmp_path: Path
) -> None:
    # Only the bundled hello workflow, so nothing else in the bundle bears on this test.
    shutil.copy(BUNDLED_WORKFLOWS / "hello.yaml", tmp_path / "hello.yaml")
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        faults = [
            Fault.rate_limited(retry_after=1),
            Fault.server_error(500),
            Fault.server_error(503),
            Fault.server_error(500),
            Fault.rate_limited(retry_after=1),
            Fault.server_error(503),
        ]
        slack.inject_faults("chat.postMessage", faults)
        started = time.monotonic()
        for i in range(RUNS):
            result = await slack.slash_command("alice", "general", f"hello run {i}")
            assert result.ok, result.body

        def all_posted() -> list[dict[str, object]] | None:
            messages = slack.messages("general", include_replies=True)
            return messages if len(messages) >= RUNS * MESSAGES_PER_RUN else None

        await slack.wait_for(all_posted, timeout=30, message="not every message arrived")
        # Count only once every run has finished: no post for them can still be on its way.
        store = harness.runtime.store

        deadline = time.monotonic() + 30
        while True:
            async with store.transaction() as session:
                statuses = (await session.scalars(select(RunRow.status))).all()
            if len(statuses) == RUNS and set(statuses) == {"succeeded"}:
                break
            assert time.monotonic() < deadline, f"runs did not all succeed: {statuses}"
            await asyncio.sleep(0.05)
        messages = slack.messages("general", include_replies=True)
        elapsed = time.monotonic() - started

    calls = slack.api_calls("chat.postMessage")
    answers = Counter(call.status for call in calls)
    assert answers[429] == 2 and answers[500] == 2 and answers[503] == 2, answers
    keys = Counter(
        (message.get("metadata") or {}).get("event_payload", {}).get("key") for message in messages
    )
    assert None not in keys, "every bot message carries its idempotency key"
    assert len(keys) == RUNS * MESSAGES_PER_RUN
    assert set(keys.values()) == {1}, {k: n for k, n in keys.items() if n > 1}
    assert sum(1 for call in calls if call.ok) == len(messages)
    print(
        f"\n[{database.backend}] {len(messages)} messages, each once, through "
        f"{dict(answers)} chat.postMessage answers in {elapsed:.1f}s"
    )
