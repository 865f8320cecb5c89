"""``switchboard worker`` runs jobs only: with ``SLACK_APP_TOKEN`` in its environment it
still opens no Socket Mode link, or Slack would hand it commands and clicks too."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from bot.serve import run_workers
from tests.socket_mode.workflows import write_workflows
from tests.support.socket_harness import running_socket_bot
from tests.support.stores import Database


async def test_a_worker_process_runs_jobs_but_opens_no_link(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with running_socket_bot(
        sqlite_db, workflows_dir=write_workflows(tmp_path), run_workers=0
    ) as harness:
        slack = harness.slack
        worker = asyncio.create_task(run_workers(harness.settings, concurrency=2))
        try:
            await slack.slash_command("alice", "general", "hello worker")
            root = await harness.root_message("general", "started hello")
            await harness.thread_of("general", root, replies=2)  # the worker ran the run
            assert slack.socket.opened() == 1, "only serve holds a link"
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
