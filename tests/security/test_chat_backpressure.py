"""Waiting for Slack never fails a run: pacing, 429 + Retry-After, slow answers and 5xx bursts.

A step's ``timeout`` bounds the step's own work. Time the step spends waiting on chat
(the per-channel pacer, slack_sdk's in-process Retry-After and 5xx retries, the call
itself) is not counted; a Retry-After too long to sleep through in-process becomes a
durable retry due when Slack said to come back. Every test runs the real bot against
the Slack emulator and counts what people would see: each message exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from sandbox.slack import Fault
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.chat_waits import chat_time, step_deadline
from workflows.tables import JobRow, RunRow

pytestmark = pytest.mark.timing  # step timeouts measured in wall time: serial phase

FLOW = """
name: burst
thread: full
triggers: [{command: burst}]
steps:
  - id: tell
    timeout: 1s
    post: {text: "Heads up: {{ input.text }}"}
"""
MESSAGES_PER_RUN = 3  # root, the step's post, the step's result note (``thread: full``)


def _write_flow(folder: Path) -> None:
    (folder / "burst.yaml").write_text(FLOW)


async def _statuses(harness: Harness) -> list[str]:
    async with harness.runtime.store.transaction() as session:
        return list(await session.scalars(select(RunRow.status)))


async def _wait_all_finished(harness: Harness, runs: int, timeout: float) -> list[str]:
    async def finished() -> list[str] | None:
        statuses = await _statuses(harness)
        done = [s for s in statuses if s in ("succeeded", "failed")]
        return statuses if len(statuses) == runs and len(done) == runs else None

    try:
        result: list[str] = await harness.slack.wait_for(finished, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"runs did not all finish: {await _statuses(harness)}") from None
    return result


def _keys(messages: list[dict[str, Any]]) -> Counter[str | None]:
    return Counter(
        (message.get("metadata") or {}).get("event_payload", {}).get("key") for message in messages
    )


def _assert_each_message_once(harness: Harness, runs: int) -> None:
    messages = harness.slack.messages("general", include_replies=True)
    keys = _keys(messages)
    assert None not in keys, "every bot message carries its idempotency key"
    assert set(keys.values()) == {1}, {k: n for k, n in keys.items() if n > 1}
    assert len(keys) == runs * MESSAGES_PER_RUN, len(keys)
    accepted = [c for c in harness.slack.api_calls("chat.postMessage") if c.ok]
    assert len(accepted) == len(messages)


@pytest.mark.slow
async def test_burst_in_one_channel_under_rate_limits_fails_no_run(
    database: Database, tmp_path: Path
) -> None:
    runs = 100
    _write_flow(tmp_path)
    async with running_bot(
        database,
        workflows_dir=tmp_path,
        SWITCHBOARD_WORKER_CONCURRENCY=runs,
        # Slack's pacing (a short burst, then a steady rate) scaled up 40x so the test is short.
        SWITCHBOARD_SLACK_POST_BURST=5,
        SWITCHBOARD_SLACK_POSTS_PER_S=40,
    ) as harness:
        slack = harness.slack
        # The emulator enforces a per-channel chat.postMessage limit (a sliding window, 429 +
        # Retry-After beyond it), below the pacer's rate so both bite; its one-minute window
        # scaled to one second.
        slack.set_rate_limit("chat.postMessage", 20)
        slack._api.rate_limiter.window = 1.0
        # And Slack's own hiccups, whatever the load: every 25th post told to wait 2 s.
        slack.inject_faults(
            "chat.postMessage", ([Fault(status=200)] * 24 + [Fault.rate_limited(2)]) * 12
        )
        started = time.monotonic()
        answers = await asyncio.gather(
            *(slack.slash_command("alice", "general", f"burst run {i}") for i in range(runs))
        )
        assert all(a.ok for a in answers)
        statuses = await _wait_all_finished(harness, runs, timeout=50)
        elapsed = time.monotonic() - started
        async with harness.runtime.store.transaction() as session:
            errors = Counter(await session.scalars(select(RunRow.error)))
        assert Counter(statuses) == {"succeeded": runs}, errors
        _assert_each_message_once(harness, runs)
        throttled = [c for c in slack.api_calls("chat.postMessage") if c.status == 429]
    assert len(throttled) >= 12, "every scripted 429 was answered"
    print(f"\n[{database.backend}] {runs} runs in {elapsed:.1f}s, {len(throttled)} answers 429")


async def test_slack_answering_slower_than_the_step_timeout_fails_no_run(
    database: Database, tmp_path: Path
) -> None:
    _write_flow(tmp_path)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        # The root posts; the step's post is answered after 1.5 s (past its 1 s timeout).
        slack.inject_faults("chat.postMessage", [Fault(status=200), Fault(delay=1.5)])
        await slack.slash_command("alice", "general", "burst slow slack")
        assert await _wait_all_finished(harness, 1, timeout=15) == ["succeeded"]
        _assert_each_message_once(harness, 1)


async def test_5xx_burst_retried_in_process_past_the_step_timeout_fails_no_run(
    database: Database, tmp_path: Path
) -> None:
    _write_flow(tmp_path)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        # The step's post meets three 503s; slack_sdk's back-off between them adds up to 3.5 s.
        slack.inject_faults("chat.postMessage", [Fault(status=200)] + [503] * 3)
        await slack.slash_command("alice", "general", "burst flaky slack")
        assert await _wait_all_finished(harness, 1, timeout=20) == ["succeeded"]
        _assert_each_message_once(harness, 1)


@pytest.mark.parametrize("retry_after", [30, 120])
async def test_long_retry_after_is_a_durable_wait_not_a_failure(
    database: Database, tmp_path: Path, retry_after: int
) -> None:
    _write_flow(tmp_path)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        slack.inject_faults(
            "chat.postMessage", [Fault(status=200), Fault.rate_limited(retry_after=retry_after)]
        )
        await slack.slash_command("alice", "general", "burst told to come back later")
        store = harness.runtime.store

        async def parked() -> JobRow | None:
            async with store.transaction() as session:
                job = (await session.scalars(select(JobRow))).one_or_none()
            return job if job is not None and job.status == "queued" and job.failures else None

        # Not slept through in a worker (holding its slot), not failed: queued until then.
        job = await slack.wait_for(parked, timeout=5, message="the job was not parked")
        assert await _statuses(harness) == ["running"]
        due = job.due_at.replace(tzinfo=UTC) if job.due_at.tzinfo is None else job.due_at
        assert due >= datetime.now(UTC) + timedelta(seconds=retry_after - 5)
        # Slack's wait is over (we move the due time rather than sleep through it).
        async with store.transaction() as session:
            await session.execute(
                update(JobRow).where(JobRow.id == job.id).values(due_at=datetime.now(UTC))
            )
        harness.runtime.engine.wakeup.set()
        assert await _wait_all_finished(harness, 1, timeout=10) == ["succeeded"]
        _assert_each_message_once(harness, 1)


async def _chat_call(seconds: float) -> None:
    with chat_time():
        await asyncio.sleep(seconds)


async def _step_waiting_on_chat_then_working(timeout: float) -> None:
    async with step_deadline(timeout):
        # Two overlapping chat waits (a step posting twice at once): 0.8 s, none counted.
        await asyncio.gather(_chat_call(0.8), _chat_call(0.4))
        await asyncio.sleep(0.3)  # own work: 0.3 s of 0.5
        await asyncio.sleep(0.3)  # 0.6 s: over


async def test_the_step_own_work_is_still_bounded_by_its_timeout() -> None:
    """Pausing for chat must not switch timeouts off: the step's own time still counts."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _step_waiting_on_chat_then_working(0.5)
    elapsed = loop.time() - started
    assert 1.25 <= elapsed < 1.6, elapsed
