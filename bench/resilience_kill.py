"""kill -9 ``switchboard worker`` processes at random during N runs: all complete, nothing twice.

    python -m bench.resilience_kill                      # 500 runs, SQLite, 8 kill rounds
    python -m bench.resilience_kill --backend postgres --runs 500 --kills 10 --seed 7

The large version of ``tests/engine_proof/test_crash_recovery.py`` and built from
its pieces: the same four-step workflow (Slack post -> POST to an idempotent
counting service -> set -> Slack post), the same ``switchboard worker`` child
processes and the same kill moments (right after Slack accepted a post, right
after the service applied an effect, or at a random moment; one or both
workers). After ``--kills`` rounds the workers are restarted and left to finish.

PASS when: every run succeeded, no job is left queued/leased, each step ran to
completion once (one ``done`` job per step); every (run, step, purpose) Slack
message exists exactly once; the service applied exactly one effect per run and
the run kept that effect's id; the audit chain verifies with exactly one
``step.completed`` per step and one ``run.succeeded`` per run (zero lost, zero extra).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import SlackEmulator, WorkspaceSeed
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
from tests.support.stores import Database, postgres_database, sqlite_database
from workflows import audit
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow


@contextlib.asynccontextmanager
async def fresh_database(backend: str, tmp: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file or a throw-away PostgreSQL schema (the test suite's helpers)."""
    if backend == "postgres":
        async with postgres_database() as database:
            yield database
    else:
        async with sqlite_database(tmp, tmp / "template.db") as database:
            yield database


async def statuses(store: Store, run_ids: list[str]) -> Counter[str]:
    async with store.transaction() as session:
        rows = await session.scalars(select(RunRow.status).where(RunRow.id.in_(run_ids)))
        return Counter(rows.all())


async def check(
    store: Store, run_ids: list[str], slack: SlackEmulator, service: IdempotentService
) -> tuple[list[str], dict[str, int]]:
    """Every invariant of the module docstring; returns (problems, counts)."""
    problems: list[str] = []
    async with store.transaction() as session:
        runs = {run.id: run for run in (await session.scalars(select(RunRow))).all()}
        jobs = (await session.scalars(select(JobRow))).all()
        records = (await session.scalars(select(AuditRow).order_by(AuditRow.seq))).all()
    n = len(run_ids)
    not_ok = {r: runs[r].status for r in run_ids if runs[r].status != "succeeded"}
    if not_ok:
        problems.append(f"{len(not_ok)} runs not succeeded: {dict(Counter(not_ok.values()))}")
    job_status = Counter(job.status for job in jobs)
    if job_status != {"done": n * len(STEPS)}:
        problems.append(f"jobs: {dict(job_status)} (expected {n * len(STEPS)} done)")
    per_step = Counter((job.run_id, job.step_id) for job in jobs if job.status == "done")
    twice = sum(1 for count in per_step.values() if count > 1)
    if twice:
        problems.append(f"{twice} steps completed by more than one job")

    messages = slack.messages("general", include_replies=True)
    keys = Counter(message_key(message) for message in messages)
    expected = {f"{run_id}/{purpose}" for run_id in run_ids for purpose in PURPOSES}
    duplicate_messages = sum(count - 1 for count in keys.values() if count > 1)
    missing_messages = len(expected - set(keys))
    if duplicate_messages or missing_messages:
        problems.append(f"Slack: {duplicate_messages} duplicates, {missing_messages} missing")

    duplicate_effects = sum(1 for key in service.applied if key not in {f"{r}:book" for r in runs})
    missing_effects = sum(1 for r in run_ids if f"{r}:book" not in service.applied)
    mismatched = sum(
        1
        for r in run_ids
        if f"{r}:book" in service.applied
        and (runs[r].context.get("steps", {}).get("book", {}).get("data") or {}).get("id")
        != service.applied[f"{r}:book"]["id"]
    )
    if duplicate_effects or missing_effects or mismatched:
        problems.append(
            f"effects: {duplicate_effects} extra, {missing_effects} missing, "
            f"{mismatched} runs kept another effect's result"
        )

    verified = await audit.verify(store)
    if not verified.ok:
        problems.append(f"audit chain: {verified.problem}")
    completed = Counter((r.run_id, r.step_id) for r in records if r.action == "step.completed")
    lost_audit = sum(1 for r in run_ids for s in STEPS if completed[(r, s)] == 0)
    extra_audit = sum(count - 1 for count in completed.values() if count > 1)
    succeeded = Counter(r.run_id for r in records if r.action == "run.succeeded")
    lost_audit += sum(1 for r in run_ids if succeeded[r] == 0)
    extra_audit += sum(count - 1 for count in succeeded.values() if count > 1)
    if lost_audit or extra_audit:
        problems.append(f"audit: {lost_audit} records lost, {extra_audit} extra")
    counts = {
        "runs_succeeded": sum(1 for r in run_ids if runs[r].status == "succeeded"),
        "jobs_reexecuted": sum(1 for job in jobs if job.attempt > 1),
        "slack_messages": len(messages),
        "duplicate_messages": duplicate_messages,
        "missing_messages": missing_messages,
        "effects_applied": len(service.applied),
        "raw_deliveries": service.raw_deliveries,
        "duplicate_effects": duplicate_effects,
        "lost_audit_records": lost_audit,
        "extra_audit_records": extra_audit,
        "audit_records": len(records),
    }
    return problems, counts


async def main_async(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    print(
        f"backend={args.backend} runs={args.runs} kill_rounds={args.kills} seed={seed} "
        f"cpus={os.cpu_count()} load_1m={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    service = IdempotentService(delay=0.01)
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    with tempfile.TemporaryDirectory(prefix="sb-kill-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "workflows"
        folder.mkdir()
        (folder / "crashy.yaml").write_text(WORKFLOW)
        async with (
            fresh_database(args.backend, tmp) as database,
            serve_asgi(slack.asgi_app) as slack_url,
            serve_asgi(service.asgi_app) as service_url,
        ):
            slack.base_url = slack_url
            (folder / "connections.yaml").write_text(connections(service_url))
            context = CheckContext(
                templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"ledger"})
            )
            loaded = load_folder(folder, context)
            workflow = loaded.workflows["crashy"]
            store = database.store()
            run_ids = []
            now = datetime.now(UTC)
            for i in range(args.runs):
                request = StartRequest(workflow, "bench", text=f"PO-{i:04d}")
                run_ids.append((await start_run(store, request, now)).run_id)
            env = {
                **os.environ,
                **database.env(),
                "SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SWITCHBOARD_WORKFLOWS": str(folder),
                "SWITCHBOARD_LEASE_SECONDS": str(args.lease),
                "SWITCHBOARD_POLL_SECONDS": "0.05",
                "SWITCHBOARD_SLACK_POST_BURST": "1000",
                "SWITCHBOARD_SLACK_POSTS_PER_S": "1000",
                "SWITCHBOARD_LOG_LEVEL": "WARNING",
            }
            workers = WorkerProcesses(env, tmp, concurrency=4)
            kills: list[str] = []
            problems: list[str] = []
            try:
                for _ in range(args.kills):
                    done = await statuses(store, run_ids)
                    if done.get("succeeded", 0) == len(run_ids):
                        break
                    await start_workers_and_wait_ready(workers, slack)
                    # Let them work a moment (the kill moments of the test are early ones).
                    await asyncio.sleep(rng.uniform(0.0, args.work))
                    kills.append(await kill_at_some_point(rng, workers, service, slack))
                    await workers.reap()
                    print(f"  kill {len(kills)}: {kills[-1]}; runs {dict(done)}", flush=True)
                await start_workers_and_wait_ready(workers, slack)
                deadline = time.monotonic() + args.deadline
                while time.monotonic() < deadline:
                    done = await statuses(store, run_ids)
                    if done.get("succeeded", 0) + done.get("failed", 0) == len(run_ids):
                        break
                    await asyncio.sleep(0.2)
                else:
                    problems.append(f"not finished after {args.deadline:.0f}s: {dict(done)}")
                codes = await workers.stop()
                if any(codes):
                    problems.append(f"graceful stop exit codes {codes}")
            except BaseException:
                workers.kill_all()
                await workers.reap()
                print(workers.logs(), file=sys.stderr)
                raise
            found, counts = await check(store, run_ids, slack, service)
            problems += found
            await store.dispose()
    if not any(k.startswith(("after", "random")) for k in kills):
        problems.append("no kill happened")
    print(f"kills: {', '.join(kills)}")
    print(f"processes killed {workers.killed}, started {workers.started}")
    for name, value in counts.items():
        print(f"  {name}: {value}")
    print(f"elapsed {time.monotonic() - started:.1f}s, load_1m={os.getloadavg()[0]:.2f}")
    if counts["jobs_reexecuted"] == 0:
        problems.append("no kill interrupted a job: nothing was proved")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print(
        f"PASS: {counts['runs_succeeded']}/{len(run_ids)} runs succeeded through "
        f"{workers.killed} SIGKILLs; 0 duplicate side effects, 0 duplicate messages, "
        f"0 lost audit records"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--kills", type=int, default=8, help="kill rounds")
    parser.add_argument("--work", type=float, default=3.0, help="max seconds before a kill round")
    parser.add_argument("--lease", type=float, default=2.0, help="SWITCHBOARD_LEASE_SECONDS")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to finish")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
