"""Issue 19 item 7: `switchboard worker --metrics-port` serves the engine and connector series.

When roles are split (``serve --no-worker`` + ``worker``), steps, runs, AI and connector
calls happen in the worker, so its own ``/metrics`` must show them. A real ``switchboard
worker --metrics-port 0`` process on a SQLite file works a run whose ``http`` step calls a
local service; the test reads the port the worker logged, scrapes ``/metrics`` over HTTP
and checks the step, run and connector series, then stops the worker with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import SWITCHBOARD, WORKFLOW, IdempotentService, connections
from tests.observability.test_metrics import parse, value
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import sqlite_database
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import RunRow

# Each test starts `switchboard`: 5-10 s of it is the interpreter's start-up (imports) on a
# loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

PORT_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)/metrics")


async def test_worker_process_exposes_step_run_and_connector_series(
    tmp_path: Path, sqlite_template: Path
) -> None:
    service = IdempotentService()
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "crashy.yaml").write_text(WORKFLOW)
    async with (
        sqlite_database(tmp_path, sqlite_template) as database,
        serve_asgi(slack.asgi_app) as slack_url,
        serve_asgi(service.asgi_app) as service_url,
    ):
        slack.base_url = slack_url
        (folder / "connections.yaml").write_text(connections(service_url))
        context = CheckContext(templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"ledger"}))
        workflow = load_folder(folder, context).workflows["crashy"]
        store = database.store()
        try:
            run_id = (
                await start_run(store, StartRequest(workflow, "test", text="PO-1"), _now())
            ).run_id
        finally:
            await store.dispose()
        env = {
            **os.environ,
            **database.env(),
            "SLACK_API_URL": slack.api_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SWITCHBOARD_WORKFLOWS": str(folder),
            "SWITCHBOARD_POLL_SECONDS": "0.05",
            "SWITCHBOARD_LOG_LEVEL": "INFO",
            "SWITCHBOARD_LOG_FORMAT": "json",
        }
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = await asyncio.create_subprocess_exec(
                str(SWITCHBOARD),
                *("worker", "--metrics-port", "0", "--metrics-host", "127.0.0.1"),
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            url = await _metrics_url(log_path, worker)
            await _until_succeeded(database.store(), run_id, log_path)
            async with httpx.AsyncClient() as client:
                response = await client.get(url)
        finally:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
            code = await asyncio.wait_for(worker.wait(), 15)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families, samples = parse(response.text)
    names = {name for name, _type, _samples in families}
    # The engine's series, as the serve process has them.
    assert value(samples, "switchboard_runs_finished_total", workflow="crashy", status="succeeded")
    assert value(samples, "switchboard_step_duration_seconds_count", kind="http", result="ok") == 1
    assert value(samples, "switchboard_job_queue_delay_seconds_count", kind="http") == 1
    assert value(samples, "switchboard_database_up") == 1
    # The connector's call, through the connector hook: one call, one latency sample.
    calls = "switchboard_connector_calls_total"
    assert value(samples, calls, connection="ledger", kind="http", outcome="ok") == 1
    latency = "switchboard_connector_call_duration_seconds_count"
    assert value(samples, latency, connection="ledger", kind="http") == 1
    # Slack calls the worker made, and the AI families (no AI step ran: declared, empty).
    assert (
        value(samples, "switchboard_slack_api_calls_total", method="chat.postMessage", outcome="ok")
        >= 2
    )
    assert {"switchboard_ai_calls", "switchboard_ai_call_duration_seconds"} <= names
    assert code == 0, log_path.read_text()


async def _metrics_url(log_path: Path, worker: asyncio.subprocess.Process) -> str:
    """The URL the worker logged once its metrics server listens (port 0: it picked one)."""
    deadline = time.monotonic() + 30
    while (found := PORT_LINE.search(log_path.read_text(errors="replace"))) is None:
        assert worker.returncode is None, log_path.read_text()
        assert time.monotonic() < deadline, f"no metrics URL logged\n{log_path.read_text()}"
        await asyncio.sleep(0.05)
    return f"http://127.0.0.1:{found.group(1)}/metrics"


async def _until_succeeded(store: Store, run_id: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    try:
        while True:
            async with store.transaction() as session:
                status = await session.scalar(select(RunRow.status).where(RunRow.id == run_id))
            if status == "succeeded":
                return
            assert time.monotonic() < deadline, f"run is {status}\n{log_path.read_text()}"
            await asyncio.sleep(0.05)
    finally:
        await store.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_taken_metrics_port_fails_in_one_line(tmp_path: Path) -> None:
    """Checked before the database or Slack: the operator sees the port problem first."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        result = subprocess.run(
            [str(SWITCHBOARD), "worker", "--metrics-port", port, "--metrics-host", "127.0.0.1"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=30,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"configuration error: --metrics-port {port} on 127.0.0.1: Address already in use"
    ]
