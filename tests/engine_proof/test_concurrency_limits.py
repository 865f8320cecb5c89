"""Concurrency limits hold across processes: two `switchboard worker`s, one shared limit.

A stand-in API counts requests in flight (each takes a moment). Two workflows
call it from two worker processes with room for 8 jobs each: ``capped_flow``
declares ``concurrency: 3``; ``via_capped`` goes through a connection with
``max_concurrency_total: 2``. The API must never see more than 3 and 2 calls at
once, must see that many (the limit is not a lock), and every run must succeed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import WorkerProcesses
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import RunRow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RUNS = 12

WORKFLOWS = {
    "capped_flow.yaml": """\
name: capped_flow
concurrency: 3
steps:
  - id: call
    quiet: true
    http: {connection: api, method: GET, path: /slow/capped_flow}
""",
    "via_capped.yaml": """\
name: via_capped
steps:
  - id: call
    quiet: true
    http: {connection: capped, method: GET, path: /slow/via_capped}
""",
}


class InFlightCounter:
    """``GET /slow/{name}``: answers after a moment; remembers the most calls at once per name."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total: Counter[str] = Counter()

    @property
    def asgi_app(self) -> Starlette:
        return Starlette(routes=[Route("/slow/{name}", self._slow)])

    async def _slow(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        self.now[name] += 1
        self.total[name] += 1
        self.peak[name] = max(self.peak[name], self.now[name])
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.now[name] -= 1
        return JSONResponse({"ok": True})


async def test_limits_hold_across_worker_processes(database: Database, tmp_path: Path) -> None:
    api = InFlightCounter(delay=0.3)
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in WORKFLOWS.items():
        (folder / name).write_text(text)
    # No chat in these workflows, but a worker's start-up asks Slack who it is: a Slack
    # that answers keeps it from retrying an unreachable one for ~18 s first.
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    store = database.store()
    try:
        async with serve_asgi(slack.asgi_app) as slack_url, serve_asgi(api.asgi_app) as url:
            slack.base_url = slack_url
            (folder / "connections.yaml").write_text(
                f"connections:\n"
                f"  api: {{type: http, base_url: '{url}'}}\n"
                f"  capped: {{type: http, base_url: '{url}', max_concurrency_total: 2}}\n"
            )
            loaded = load_folder(
                folder,
                CheckContext(
                    templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"api", "capped"})
                ),
            )
            assert loaded.errors == []
            run_ids = []
            for name in ("capped_flow", "via_capped"):
                for i in range(RUNS):
                    request = StartRequest(loaded.workflows[name], "test", text=str(i))
                    run_ids.append((await start_run(store, request, _now())).run_id)
            env = _env(database, folder, slack.api_url)
            workers = WorkerProcesses(env, tmp_path, concurrency=8)
            await workers.start(2)
            try:
                await _until_finished(store, run_ids, deadline=90, workers=workers)
            finally:
                codes = await workers.stop()
        assert codes == [0, 0], workers.logs()
    finally:
        await store.dispose()
    assert api.total == {"capped_flow": RUNS, "via_capped": RUNS}
    assert api.peak["capped_flow"] == 3, f"workflow limit 3, peak {api.peak}"
    assert api.peak["via_capped"] == 2, f"connection limit 2, peak {api.peak}"


def _env(database: Database, folder: Path, slack_api_url: str) -> dict[str, str]:
    return {
        **os.environ,
        **database.env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "SWITCHBOARD_POLL_SECONDS": "0.05",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }


async def _until_finished(
    store: Store, run_ids: list[str], *, deadline: float, workers: WorkerProcesses
) -> None:
    end = time.monotonic() + deadline
    while True:
        async with store.read() as session:
            statuses = (
                await session.scalars(select(RunRow.status).where(RunRow.id.in_(run_ids)))
            ).all()
        if all(status == "succeeded" for status in statuses):
            return
        assert time.monotonic() < end, f"runs unfinished: {Counter(statuses)}\n{workers.logs()}"
        await asyncio.sleep(0.1)


def _now() -> datetime:
    return datetime.now(UTC)
