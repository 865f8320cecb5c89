"""Restart PostgreSQL mid-load: ``switchboard worker`` processes reconnect and every run completes.

    python -m bench.resilience_pg_restart                   # 300 runs, 2 workers, 1 restart
    python -m bench.resilience_pg_restart --runs 500 --restarts 2

Runs of the crash-proof workflow of ``bench/resilience_kill.py`` (Slack post ->
POST to an idempotent counting service -> set -> Slack post) are worked by two
``switchboard worker`` processes on a throw-away PostgreSQL schema. Once
``--restart-at`` of the runs have succeeded, the cluster is restarted with
``pg_ctlcluster --skip-systemctl-redirect <version> main restart`` (every
connection is cut, the server is away for a moment). The workers are *not*
restarted. PostgreSQL is started again at the end whatever happens.

PASS when: the worker processes survived, every run succeeded within the
deadline, and the same invariants as resilience_kill.py hold (each step
completed once, each message and effect once, audit chain intact, nothing lost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.resilience_kill import check, statuses
from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import (
    WORKFLOW,
    IdempotentService,
    WorkerProcesses,
    connections,
    start_workers_and_wait_ready,
)
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import serve_asgi
from tests.support.stores import PG_URL, Database
from workflows import migrate
from workflows.loader import CheckContext, load_folder
from workflows.runs import StartRequest, start_run


def cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"))
    return versions[-1]


def pg_ctl(action: str) -> tuple[int, str]:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster_version(), "main", action]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


async def pg_up(timeout: float = 3.0) -> bool:  # noqa: ASYNC109
    try:
        conn = await asyncio.wait_for(
            asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://")), timeout
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def ensure_pg_running() -> bool:
    """Start the cluster if it does not answer; True when it answers."""
    if await pg_up():
        return True
    code, out = await asyncio.to_thread(pg_ctl, "start")
    print(f"PostgreSQL was down; start -> {code} {out}", flush=True)
    for _ in range(60):
        if await pg_up():
            return True
        await asyncio.sleep(1)
    return False


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[Database]:
    """A migrated throw-away schema, dropped over a fresh connection (the old one dies)."""
    schema = f"pgr_{uuid.uuid4().hex[:12]}"
    raw = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(raw)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    database = Database("postgres", PG_URL, schema)
    try:
        store = database.store()
        await migrate.upgrade(store)
        await store.dispose()
        yield database
    finally:
        if await ensure_pg_running():
            conn = await asyncpg.connect(raw)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


async def status_counts(store: object, run_ids: list[str]) -> Counter[str] | None:
    try:
        return await asyncio.wait_for(statuses(store, run_ids), 5)  # type: ignore[arg-type]
    except Exception:
        return None


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(
        f"runs={args.runs} restarts={args.restarts} cluster={cluster_version()} "
        f"cpus={os.cpu_count()} load_1m={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if not await ensure_pg_running():
        print("FAIL: PostgreSQL is not reachable")
        return 1
    problems: list[str] = []
    worker_logs = ""
    restarts: list[str] = []
    counts: dict[str, int] = {}
    service = IdempotentService(delay=0.01)
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    workers: WorkerProcesses | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="sb-pgrestart-") as tmp_name:
            tmp = Path(tmp_name)
            folder = tmp / "workflows"
            folder.mkdir()
            (folder / "crashy.yaml").write_text(WORKFLOW)
            async with (
                pg_schema() as database,
                serve_asgi(slack.asgi_app) as slack_url,
                serve_asgi(service.asgi_app) as service_url,
            ):
                slack.base_url = slack_url
                (folder / "connections.yaml").write_text(connections(service_url))
                context = CheckContext(
                    templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"ledger"})
                )
                workflow = load_folder(folder, context).workflows["crashy"]
                store = database.store()
                now = datetime.now(UTC)
                run_ids = [
                    (
                        await start_run(
                            store, StartRequest(workflow, "bench", text=f"PO-{i:04d}"), now
                        )
                    ).run_id
                    for i in range(args.runs)
                ]
                env = {
                    **os.environ,
                    **database.env(),
                    "SLACK_API_URL": slack.api_url,
                    "SLACK_BOT_TOKEN": BOT_TOKEN,
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "SWITCHBOARD_WORKFLOWS": str(folder),
                    "SWITCHBOARD_LEASE_SECONDS": "5",
                    "SWITCHBOARD_POLL_SECONDS": "0.05",
                    "SWITCHBOARD_SLACK_POST_BURST": "1000",
                    "SWITCHBOARD_SLACK_POSTS_PER_S": "1000",
                    "SWITCHBOARD_LOG_LEVEL": "WARNING",
                }
                workers = WorkerProcesses(env, tmp, concurrency=4)
                await start_workers_and_wait_ready(workers, slack)
                pids = [p.pid for p in workers.live]
                deadline = time.monotonic() + args.deadline
                done: Counter[str] = Counter()
                while time.monotonic() < deadline:
                    seen = await status_counts(store, run_ids)
                    if seen is not None:
                        done = seen
                    finished = done.get("succeeded", 0) + done.get("failed", 0)
                    if finished == len(run_ids):
                        break
                    due = (len(restarts) + 1) * args.restart_at * len(run_ids)
                    if len(restarts) < args.restarts and finished >= due:
                        t0 = time.monotonic()
                        code, out = await asyncio.to_thread(pg_ctl, "restart")
                        restarts.append(
                            f"at {finished}/{len(run_ids)} done: exit {code} "
                            f"in {time.monotonic() - t0:.1f}s {out[:120]}"
                        )
                        print(f"  restart {len(restarts)}: {restarts[-1]}", flush=True)
                    await asyncio.sleep(0.2)
                else:
                    problems.append(f"not finished after {args.deadline:.0f}s: {dict(done)}")
                survivors = [p.pid for p in workers.live if p.returncode is None]
                if survivors != pids:
                    problems.append(f"worker processes died: {pids} -> {survivors}")
                codes = await workers.stop()
                if any(codes):
                    problems.append(f"graceful stop exit codes {codes}")
                worker_logs = workers.logs()
                await store.engine.dispose()  # connections from before the restart are dead
                found, counts = await check(store, run_ids, slack, service)
                problems += found
                await store.dispose()
    except BaseException:
        if workers is not None:
            workers.kill_all()
            await workers.reap()
            print(workers.logs(), file=sys.stderr)
        raise
    finally:
        if not await ensure_pg_running():
            problems.append("PostgreSQL did not come back")
    if len(restarts) < args.restarts:
        problems.append(f"only {len(restarts)} restarts happened (runs finished first?)")
    print(f"restarts: {restarts}")
    for name, value in counts.items():
        print(f"  {name}: {value}")
    print(f"elapsed {time.monotonic() - started:.1f}s, load_1m={os.getloadavg()[0]:.2f}")
    if problems:
        print(worker_logs[-6000:], file=sys.stderr)
        print("FAIL: " + "; ".join(problems))
        return 1
    print(
        f"PASS: {counts['runs_succeeded']}/{len(run_ids)} runs succeeded across "
        f"{len(restarts)} PostgreSQL restart(s), workers never restarted; "
        f"0 duplicates, 0 lost audit records"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument(
        "--restart-at", type=float, default=0.3, help="share of runs done before each restart"
    )
    parser.add_argument("--deadline", type=float, default=300.0)
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
