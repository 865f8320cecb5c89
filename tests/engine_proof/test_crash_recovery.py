"""Kill -9 real `switchboard worker` processes mid-run, many times: nothing is lost or repeated.

Thirty runs of a four-step workflow (post to Slack -> POST to a business API ->
set -> post) are worked by two worker processes that are SIGKILLed again and
again: right after Slack accepted a post (before the worker could record its
``ts``), right after the business API applied an effect (before the worker got
the answer), and at random moments. Then the workers are restarted and left to
finish. What must hold, on SQLite and on PostgreSQL:

- every run succeeds, and no job is left queued or leased;
- each (run, step, purpose) message exists in Slack exactly once;
- each run's HTTP effect was applied once (the service dedupes by the
  Idempotency-Key the engine sends; raw deliveries may be more, and are reported),
  and the run recorded the result of that one application;
- the audit trail verifies and has exactly one ``step.completed`` per step of
  every run, and one ``run.succeeded`` per run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import ApiCall, SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import (
    PURPOSES,
    STEPS,
    WORKFLOW,
    IdempotentService,
    WorkerProcesses,
    connections,
    kill_at_some_point,
    message_key,
    start_workers_and_wait_ready,
)
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows import audit
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

# ~40-60 s per backend on an idle 2-core machine; the cap leaves room for a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

RUNS = 30
KILL_ROUNDS = 5
LEASE_SECONDS = 2


async def test_killed_workers_lose_nothing_and_repeat_nothing(
    database: Database, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SWITCHBOARD_CRASH_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    print(f"\n[{database.backend}] crash test seed {seed} (SWITCHBOARD_CRASH_SEED to replay)")
    # Each effect takes a moment, so kills land on work in flight however fast the engine is.
    service = IdempotentService(delay=0.5)
    # No emulated rate limits here (they have their own test); the bot paces itself anyway.
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "crashy.yaml").write_text(WORKFLOW)
    started = time.monotonic()
    store = database.store()
    try:
        async with serve_asgi(slack.asgi_app) as slack_url, serve_asgi(service.asgi_app) as url:
            slack.base_url = slack_url
            (folder / "connections.yaml").write_text(connections(url))
            loaded = load_folder(
                folder,
                CheckContext(templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"ledger"})),
            )
            assert loaded.errors == []
            workflow = loaded.workflows["crashy"]
            run_ids = []
            for i in range(RUNS):
                request = StartRequest(workflow, "test", text=f"PO-{i:03d}")
                run_ids.append((await start_run(store, request, _now())).run_id)

            env = {
                **os.environ,
                **database.env(),
                "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SWITCHBOARD_WORKFLOWS": str(folder),
                "SWITCHBOARD_LEASE_SECONDS": str(LEASE_SECONDS),
                "SWITCHBOARD_POLL_SECONDS": "0.05",
                "SWITCHBOARD_SLACK_POST_BURST": "1000",
                "SWITCHBOARD_SLACK_POSTS_PER_S": "1000",
                "SWITCHBOARD_LOG_LEVEL": "WARNING",
            }
            workers = WorkerProcesses(env, tmp_path, concurrency=4)
            kills: list[str] = []
            try:
                for _ in range(KILL_ROUNDS):
                    await start_workers_and_wait_ready(workers, slack)
                    round_start = time.monotonic()
                    how = await kill_at_some_point(rng, workers, service, slack)
                    kills.append(f"{how} at {time.monotonic() - round_start:.1f}s")
                    await workers.reap()
                await start_workers_and_wait_ready(workers, slack)  # ready: SIGTERM is a clean stop
                await _until_all_finished(store, run_ids, deadline=60, workers=workers)
                codes = await workers.stop()
            except BaseException:
                workers.kill_all()
                await workers.reap()
                print(workers.logs())
                raise
            assert codes == [0] * len(codes), f"graceful stop failed: {codes}\n{workers.logs()}"

        posted = [
            call
            for call in slack.api_calls("chat.postMessage")
            if call.ok and _key(call) is not None
        ]
        updates = [call for call in slack.api_calls("chat.update") if call.ok]
        messages = slack.messages("general", include_replies=True)
        reexecuted = await _verify(store, run_ids, slack, service, messages)
    finally:
        await store.dispose()

    print(
        f"[{database.backend}] {RUNS} runs, kills: {', '.join(kills)} "
        f"({workers.killed} processes killed, {workers.started} started); "
        f"{reexecuted} jobs re-executed after a kill; "
        f"Slack: {len(posted)} posts for {len(messages)} messages, {len(updates)} updates; "
        f"ledger: {service.raw_deliveries} raw deliveries, {len(service.applied)} effects applied; "
        f"{time.monotonic() - started:.1f}s"
    )
    assert workers.killed >= KILL_ROUNDS
    assert reexecuted > 0, "no kill interrupted a job: the test proved nothing"


async def _until_all_finished(
    store: Store, run_ids: list[str], deadline: float, workers: WorkerProcesses
) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        async with store.transaction() as session:
            statuses = Counter(
                (await session.scalars(select(RunRow.status).where(RunRow.id.in_(run_ids)))).all()
            )
        if statuses.get("succeeded", 0) + statuses.get("failed", 0) == len(run_ids):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"runs stuck after {deadline}s: {dict(statuses)}\n{workers.logs()}")


async def _verify(
    store: Store,
    run_ids: list[str],
    slack: SlackEmulator,
    service: IdempotentService,
    messages: list[dict[str, object]],
) -> int:
    async with store.transaction() as session:
        runs = {run.id: run for run in (await session.scalars(select(RunRow))).all()}
        jobs = (await session.scalars(select(JobRow))).all()
        records = (await session.scalars(select(AuditRow).order_by(AuditRow.seq))).all()

    # Every run completed; nothing is left queued or leased.
    assert {run_id: runs[run_id].status for run_id in run_ids} == dict.fromkeys(
        run_ids, "succeeded"
    ), {r.id: (r.status, r.error) for r in runs.values() if r.status != "succeeded"}
    assert Counter(job.status for job in jobs) == {"done": RUNS * len(STEPS)}
    assert Counter((job.run_id, job.step_id) for job in jobs) == {
        (run_id, step): 1 for run_id in run_ids for step in STEPS
    }

    # Slack: each (run, step, purpose) message exists exactly once.
    keys = Counter(message_key(message) for message in messages)
    expected = {f"{run_id}/{purpose}": 1 for run_id in run_ids for purpose in PURPOSES}
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert not duplicates, f"posted twice: {duplicates}"
    assert keys == expected

    # The business service: one effect per run, and the run kept that effect's result.
    assert set(service.applied) == {f"{run_id}:book" for run_id in run_ids}
    for run_id in run_ids:
        applied = service.applied[f"{run_id}:book"]
        assert runs[run_id].context["steps"]["book"]["data"]["id"] == applied["id"]
        assert runs[run_id].context["steps"]["calc"]["booked"] == applied["id"]

    # The audit trail verifies, with one step.completed per step and one run.succeeded per run.
    verified = await audit.verify(store)
    assert verified.ok, verified.problem
    completed = Counter((r.run_id, r.step_id) for r in records if r.action == "step.completed")
    assert completed == {(run_id, step): 1 for run_id in run_ids for step in STEPS}
    succeeded = Counter(r.run_id for r in records if r.action == "run.succeeded")
    assert succeeded == dict.fromkeys(run_ids, 1)
    return sum(1 for job in jobs if job.attempt > 1)


def _key(call: ApiCall) -> str | None:
    metadata = call.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if not isinstance(metadata, dict):
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return str(key) if key else None


def _now() -> datetime:
    return datetime.now(UTC)
