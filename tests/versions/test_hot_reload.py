"""Hot reload: an edited workflow file is the next run's version, without a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.serve import reload_on_sighup
from connectors.webhook_out import sign
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from tests.versions.support import runs, wait_runs, write

V1 = """
    name: hello
    triggers:
      - command: hello
    steps:
      - id: greet
        set: {greeting: "hi"}
"""
V2 = (
    V1
    + """
      - id: wave
        set: {waved: true}
"""
)
# Line 11 names a field no step has: the file no longer loads.
BROKEN = V2.replace("set: {waved: true}", "set: {waved: true}\n        sparkle: yes")
HOOK = "- webhook: {secret_env: TEST_RELOAD_HOOK_SECRET}"


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    write(tmp_path, V1, "hello.yaml")
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


async def steps_of_next_run(harness: Harness, count: int) -> set[str]:
    await harness.slack.slash_command("alice", "general", "hello")
    finished = await wait_runs(harness, count, "succeeded")
    return set(finished[-1].context["steps"])


async def live_steps(harness: Harness, expected: int, timeout: float = 10) -> None:
    await harness.slack.wait_for(
        lambda: len(harness.runtime.workflows["hello"].steps) == expected,
        timeout=timeout,
        message=f"the live workflow did not reach {expected} steps",
    )


def reload_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.reload" and r.levelno >= 30]


async def test_an_edit_is_the_next_run_and_a_broken_edit_keeps_the_last_good_one(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.reload")
    assert await steps_of_next_run(harness, 1) == {"greet"}

    write(tmp_path, V2, "hello.yaml")
    await live_steps(harness, 2)  # polled every 2 s: no restart, no signal
    assert await steps_of_next_run(harness, 2) == {"greet", "wave"}

    path = write(tmp_path, BROKEN, "hello.yaml")
    await harness.slack.wait_for(lambda: reload_warnings(caplog), message="nothing logged")
    os.utime(path)  # touched again, same error: not reported twice
    await asyncio.sleep(2.5)
    (line,) = reload_warnings(caplog)
    assert f"{path}:11: steps[1].sparkle: unknown field" in line
    assert "previous version of 'hello' stays live" in line and "\n" not in line
    assert await steps_of_next_run(harness, 3) == {"greet", "wave"}
    versions = {run.workflow_version for run in await runs(harness)}
    assert len(versions) == 2


async def test_sighup_reloads_at_once(harness: Harness, tmp_path: Path) -> None:
    watcher = harness.runtime.watcher
    assert watcher is not None
    watcher.poll_seconds = 3600  # from the next wait on, only the signal reloads
    await asyncio.sleep(2.5)
    reload_on_sighup(harness.runtime)
    try:
        write(tmp_path, V2, "hello.yaml")
        os.kill(os.getpid(), signal.SIGHUP)
        await live_steps(harness, 2, timeout=2)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    assert await steps_of_next_run(harness, 1) == {"greet", "wave"}


async def test_a_webhook_added_by_an_edit_accepts_signed_deliveries(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_RELOAD_HOOK_SECRET", "whsec-reload-3c1d")
    body = json.dumps({"ping": 1}).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign("whsec-reload-3c1d", sent_at, body),
    }
    async with httpx.AsyncClient(base_url=harness.bot_url) as http:
        before = await http.post("/hooks/hello", content=body, headers=headers)
        assert before.status_code == 404, before.text
        write(tmp_path, V1.replace("- command: hello", HOOK), "hello.yaml")
        await harness.slack.wait_for(
            lambda: "hello" in harness.runtime.webhook_keys, timeout=10, message="not reloaded"
        )
        after = await http.post("/hooks/hello", content=body, headers=headers)
    assert after.status_code == 200, after.text
    await wait_runs(harness, 1, "succeeded")
