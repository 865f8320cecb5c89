"""SIGKILL a real ``switchboard worker`` after its ``email`` step's message was accepted (and
threaded) but before the step's completion committed: the worker that takes the job over
must not send the message again."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import ApiCall, SlackEmulator, WorkspaceSeed
from sandbox.standins import run_standins
from tests.engine_proof.support import WorkerProcesses, start_workers_and_wait_ready
from tests.steps.support import connections_yaml, write_folder
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import RunRow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WORKFLOW = """\
name: mailer
title: Mailer
channel: "#general"
thread: full  # the step's own thread note marks the moment to fail at
steps:
  - id: notify
    email:
      connection: mail
      to: [ap@example.com]
      subject: "Invoice {{ input.text }} booked"
      text: "Run {{ run.id }}"
  - id: done
    end: "sent"
"""


async def test_a_worker_killed_after_the_send_does_not_send_again(
    database: Database, tmp_path: Path
) -> None:
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    store = database.store()
    try:
        async with (
            run_standins(tmp_path / "standins") as standins,
            serve_asgi(slack.asgi_app) as slack_url,
        ):
            slack.base_url = slack_url
            folder = write_folder(
                tmp_path / "wf",
                {"mailer.yaml": WORKFLOW, "connections.yaml": connections_yaml(standins)},
            )
            loaded = load_folder(folder, CheckContext(templates_dir=BUNDLED_TEMPLATES))
            assert loaded.errors == []
            request = StartRequest(loaded.workflows["mailer"], "test", text="INV-7")
            run_id = (await start_run(store, request, datetime.now(UTC))).run_id
            workers = WorkerProcesses(_worker_env(database, slack, folder, standins.env), tmp_path)
            killed = asyncio.Event()

            def kill_after_the_note(call: ApiCall) -> None:
                # The step's thread note goes out after the SMTP server took the message and
                # before the step's completion is committed: the worst moment to die.
                if call.method == "chat.postMessage" and call.ok and "thread_ts" in call.args:
                    workers.kill_all()
                    killed.set()
                    slack.on_api_call(None)

            slack.on_api_call(kill_after_the_note)
            try:
                # Not "wait until both are ready": one may do the work (and be killed with the
                # other) while its peer is still importing.
                await workers.start(2)
                await asyncio.wait_for(killed.wait(), timeout=90)
                await workers.reap()
                assert len(standins.mail) == 1
                await start_workers_and_wait_ready(workers, slack)
                run = await _finished(store, run_id, workers)
                await workers.stop()
            except BaseException:
                workers.kill_all()
                await workers.reap()
                print(workers.logs())
                raise
            mail = list(standins.mail)
    finally:
        await store.dispose()

    assert run.status == "succeeded", run.error
    assert len(mail) == 1, [m.message_id for m in mail]
    assert run.context["steps"]["notify"]["already_sent"] is True, "no re-execution happened"


def _worker_env(
    database: Database, slack: SlackEmulator, folder: Path, standins_env: dict[str, str]
) -> dict[str, str]:
    return {
        **os.environ,
        **standins_env,
        **database.env(),
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "SWITCHBOARD_LEASE_SECONDS": "2",
        "SWITCHBOARD_POLL_SECONDS": "0.05",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }


async def _finished(store: Store, run_id: str, workers: WorkerProcesses) -> RunRow:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        async with store.transaction() as session:
            run = await session.scalar(select(RunRow).where(RunRow.id == run_id))
        if run is not None and run.status not in ("running", "waiting"):
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"run not finished\n{workers.logs()}")
