"""Hot reload in a ``switchboard worker`` process (issue 16 item 5: serve, worker and demo).

A real worker child process beside a ``serve --no-worker`` bot: ``kill -HUP`` makes it load
the edited file (one log line naming the new version), a broken edit keeps the previous
version live with one ``file:line`` line, and the runs it executes finish on the new one.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.engine_proof.support import WorkerProcesses
from tests.support.harness import BOT_TOKEN, Harness, running_bot
from tests.support.stores import Database
from tests.versions.support import wait_runs, write
from tests.versions.test_hot_reload import BROKEN, V1, V2, live_steps
from workflows.loader import CheckContext, load_folder
from workflows.versions import SHORT, digest_of

pytestmark = pytest.mark.slow  # a worker child process starts (~3 s) on each backend


def worker_env(database: Database, harness: Harness, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        **database.env(),
        "SLACK_API_URL": harness.slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "SWITCHBOARD_POLL_SECONDS": "0.1",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
    }


async def log_has(harness: Harness, workers: WorkerProcesses, text: str) -> list[str]:
    def lines() -> list[str]:
        return [line for line in workers.logs().splitlines() if text in line]

    found: list[str] = await harness.slack.wait_for(
        lines, timeout=15, message=f"the worker never logged {text!r}"
    )
    return found


async def test_sighup_reloads_a_worker_process_and_a_broken_edit_keeps_the_last_good_one(
    database: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    write(folder, V1, "hello.yaml")
    async with running_bot(database, workflows_dir=folder, run_workers=0) as harness:
        workers = WorkerProcesses(worker_env(database, harness, folder), tmp_path, concurrency=2)
        await workers.start(1)
        try:
            (proc,) = workers.live
            # A run the worker executed: it is up, and its SIGHUP handler is installed.
            await harness.slack.slash_command("alice", "general", "hello")
            await wait_runs(harness, 1, "succeeded")
            path = write(folder, V2, "hello.yaml")
            os.kill(proc.pid, signal.SIGHUP)
            digest = digest_of(load_folder(folder, CheckContext()).workflows["hello"])
            await log_has(harness, workers, f"new versions hello@{digest[:SHORT]}")
            harness.runtime.request_reload()  # the serve side too, before the broken edit
            await live_steps(harness, 2)

            write(folder, BROKEN, "hello.yaml")
            os.kill(proc.pid, signal.SIGHUP)
            (line,) = await log_has(harness, workers, f"{path}:11:")
            assert "previous version of 'hello' stays live" in line

            await harness.slack.slash_command("alice", "general", "hello")
            finished = await wait_runs(harness, 2, "succeeded")
            assert set(finished[-1].context["steps"]) == {"greet", "wave"}
            await asyncio.sleep(0.3)  # a second report of the same error would be here by now
            assert len([x for x in workers.logs().splitlines() if f"{path}:11:" in x]) == 1
        except BaseException:
            print(workers.logs())
            raise
        finally:
            codes = await workers.stop()
    assert codes == [0]
