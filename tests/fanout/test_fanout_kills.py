"""Kill -9 `switchboard worker` processes in the middle of a `foreach`: nothing lost or repeated.

One run goes through 50 items, 5 at a time, each a POST to a stand-in API, worked
by four real worker processes. Two are SIGKILLed at the 12th request and one more
at the 30th (as a request arrives, before its worker has the answer); the last one
finishes. What must hold, on SQLite and on PostgreSQL:

- the run succeeds with all 50 results, in item order, each the answer to its own item;
- each item has exactly one job, done, and one ``item.completed`` record;
- no item whose job was recorded done before a kill is requested again after it (a
  completed item is never repeated; only items in flight at a kill are);
- nothing is left queued or leased, and the audit trail verifies.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import WorkerProcesses
from tests.fanout.support import Sources
from tests.support.clock import ManualClock
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows import audit
from workflows.jobs import ITEM_JOB
from workflows.language.workflow import Workflow
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

# The sweep itself takes a few seconds; starting four worker processes (imports) is most of
# the rest, and on a loaded 2-core machine far more: the cap leaves room for that.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ITEMS = 50
WORKERS = 4
WORKFLOW = """\
name: sweep
steps:
  - id: each
    foreach:
      items: "{{ range(50) | list }}"
      concurrency: 5
      do:
        http: {connection: data, method: POST, path: "/items/i{{ item }}"}
  - id: after
    set: {failed: "{{ steps.each.failed }}"}
"""


async def test_killed_workers_lose_no_item_and_repeat_no_completed_one(
    database: Database, tmp_path: Path
) -> None:
    # Each answer takes 0.5 s so every worker has an item in flight when the kill lands
    # (at 0.1 s an idle machine answered so fast that no kill interrupted an item).
    sources = Sources(delay=0.5)
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(WORKFLOW)
    store = database.store()
    started = time.monotonic()
    try:
        async with serve_asgi(slack.asgi_app) as slack_url, serve_asgi(sources.asgi_app) as url:
            slack.base_url = slack_url
            (folder / "connections.yaml").write_text(
                "connections:\n  data:\n    type: http\n"
                f"    base_url: {url}\n    retry: {{attempts: 1}}\n"
            )
            wf = Workflow.model_validate(yaml.safe_load(WORKFLOW))
            run_id = (await start_run(store, StartRequest(wf, "test"), ManualClock().now())).run_id
            env = {
                **os.environ,
                **database.env(),
                "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SWITCHBOARD_WORKFLOWS": str(folder),
                "SWITCHBOARD_LEASE_SECONDS": "1",
                "SWITCHBOARD_POLL_SECONDS": "0.05",
                "SWITCHBOARD_LOG_LEVEL": "WARNING",
            }
            workers = WorkerProcesses(env, tmp_path, concurrency=4)
            done_before_kill: list[tuple[int, set[int]]] = []
            try:
                # Four at once (start-up is seconds of imports): two are killed at the 12th
                # request, one more at the 30th, and the last finishes the sweep.
                await _start_and_wait_ready(workers, slack, WORKERS)
                ready = time.monotonic()
                for after, victims in ((12, 2), (30, 1)):
                    await _kill_at_delivery(workers, sources, after, victims)
                    await workers.reap()
                    done_before_kill.append((len(sources.log), await _done(store, run_id)))
                run = await _finished(store, run_id, workers)
                sweep = time.monotonic() - ready
                codes = await workers.stop()
            except BaseException:
                workers.kill_all()
                await workers.reap()
                print(workers.logs())
                raise
            assert codes == [0], workers.logs()
        await _verify(store, run, sources, done_before_kill)
    finally:
        await store.dispose()
    repeats = sum(n - 1 for n in sources.keys.values())
    print(
        f"\n[{database.backend}] {ITEMS} items, {workers.killed} workers killed, "
        f"{repeats} in-flight requests repeated; sweep {sweep:.1f}s after start-up, "
        f"{time.monotonic() - started:.1f}s in all"
    )
    assert workers.killed == 3


async def _start_and_wait_ready(workers: WorkerProcesses, slack: SlackEmulator, n: int) -> None:
    await workers.start(n)
    deadline = time.monotonic() + 90
    while len(slack.api_calls("auth.test")) < n:  # each worker's start-up ends with auth.test
        assert time.monotonic() < deadline, f"workers did not start\n{workers.logs()}"
        await asyncio.sleep(0.05)


async def _kill_at_delivery(
    workers: WorkerProcesses, sources: Sources, count: int, victims: int
) -> None:
    fired = asyncio.Event()

    def maybe_kill(_key: str) -> None:
        if len(sources.log) >= count and not fired.is_set():
            for proc in workers.live[:victims]:  # synchronously: before they get an answer
                workers.kill(proc)
            fired.set()

    sources.on_delivery = maybe_kill
    try:
        await asyncio.wait_for(fired.wait(), timeout=30)
    finally:
        sources.on_delivery = None


async def _done(store: Store, run_id: str) -> set[int]:
    async with store.read() as session:
        query = select(JobRow.payload).where(
            JobRow.run_id == run_id, JobRow.kind == ITEM_JOB, JobRow.status == "done"
        )
        return {payload["index"] for payload in (await session.scalars(query)).all()}


async def _finished(store: Store, run_id: str, workers: WorkerProcesses) -> RunRow:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with store.read() as session:
            run = await session.get(RunRow, run_id)
        if run is not None and run.status not in ("running", "waiting"):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run stuck\n{workers.logs()}")


async def _verify(
    store: Store, run: RunRow, sources: Sources, done_before_kill: list[tuple[int, set[int]]]
) -> None:
    assert run.status == "succeeded", run.error
    results = run.context["steps"]["each"]["results"]
    assert [r["data"]["name"] for r in results] == [f"i{i}" for i in range(ITEMS)]
    async with store.read() as session:
        jobs = (await session.scalars(select(JobRow).where(JobRow.run_id == run.id))).all()
        actions = Counter(
            (await session.scalars(select(AuditRow.action).where(AuditRow.run_id == run.id))).all()
        )
    items = [job for job in jobs if job.kind == ITEM_JOB]
    assert Counter(job.payload["index"] for job in items) == dict.fromkeys(range(ITEMS), 1)
    assert {job.status for job in jobs} == {"done"}
    assert [job.kind for job in jobs if job.kind not in (ITEM_JOB, "step")] == ["signal"]  # 1 join
    assert actions["item.completed"] == ITEMS and actions["item.failed"] == 0
    assert set(sources.keys) == {f"{run.id}:each.{i}" for i in range(ITEMS)}
    for position, done in done_before_kill:
        assert done, "no item was done before the kill: the kill came too early"
        later = {key for key in sources.log[position:]}
        repeated = {i for i in done if f"{run.id}:each.{i}" in later}
        assert not repeated, f"completed items requested again after a kill: {sorted(repeated)}"
    assert sum(n - 1 for n in sources.keys.values()) > 0, "no kill interrupted an item"
    verified = await audit.verify(store)
    assert verified.ok, verified.problem
