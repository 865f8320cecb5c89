"""Engine throughput and queue latency: no-op 3-step runs through real worker processes.

    python bench/engine_throughput.py                          # the standard table (< 2 min)
    python bench/engine_throughput.py --backend postgres --workers 2 --runs 3000
    python bench/engine_throughput.py --profile                # cProfile of one SQLite worker

For each configuration a fresh database is migrated (a temporary SQLite file,
or a throw-away PostgreSQL schema), then:

1. **throughput**: ``--runs`` runs of a 3-step workflow of quiet ``set`` steps
   (no chat, no connectors) are enqueued; ``--workers`` worker processes (the
   engine's ``Worker``, ``--concurrency`` jobs each) are released together and
   the clock runs until every run has succeeded. Reported: steps/s in total and
   per worker process.
2. **latency**: with the workers idle and polling, runs are enqueued at a steady
   ``--rate`` for a second or two; for every job, enqueue -> step start
   (``jobs.started_at - jobs.created_at``). Reported: p50/p99 for first steps
   (enqueued by another process: found by polling) and next steps (queued by the
   worker that finished the previous step: woken at once).

The machine and the numbers of the last recorded run are in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import yaml
from sqlalchemy import func, select, update

from workflows import migrate
from workflows.definitions import Workflow
from workflows.engine import Engine
from workflows.ports import SystemClock
from workflows.runs import StartRequest, _start_rows, new_id, start_run
from workflows.store import Store
from workflows.tables import JobRow, RunRow
from workflows.worker import Worker

PG_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
NOOP = Workflow.model_validate(
    yaml.safe_load(
        """
        name: noop
        steps:
          - {id: one, quiet: true, set: {a: 1}}
          - {id: two, quiet: true, set: {b: 2}}
          - {id: three, quiet: true, set: {c: 3}}
        """
    )
)
STEPS = len(NOOP.steps)


@dataclass
class Result:
    backend: str
    workers: int
    steps: int
    seconds: float
    first_p50: float
    first_p99: float
    next_p50: float
    next_p99: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


# --------------------------------------------------------------------------- worker process


async def child(url: str, schema: str | None, concurrency: int, poll: float) -> None:
    """A worker process: connect, say ready, wait for 'go', work until stdin closes."""
    store = Store(url, schema=schema, pool_size=concurrency + 2)
    engine = Engine(
        store=store,
        workflows={NOOP.name: NOOP},
        chat=None,
        clock=SystemClock(),
        owner=f"bench-{os.getpid()}",
    )
    async with store.transaction() as session:  # open the pool's first connection now
        await session.scalar(select(func.count()).select_from(RunRow))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    await reader.readline()  # "go"
    worker = Worker(engine, concurrency=concurrency, poll_seconds=poll)
    task = asyncio.create_task(worker.run())
    await reader.read()  # EOF: stop
    worker.stop()
    await task
    await store.dispose()


def spawn(url: str, schema: str | None, args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--child", "--url", url]
    command += ["--concurrency", str(args.concurrency), "--poll", str(args.poll)]
    if schema:
        command += ["--schema", schema]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------- one configuration


async def enqueue(store: Store, runs: int) -> None:
    """What ``start_run`` writes (request, run, first job), 500 runs per transaction."""
    now = datetime.now(UTC)
    if runs == 1:
        await start_run(store, StartRequest(NOOP, "bench"), now)
        return
    for offset in range(0, runs, 500):
        async with store.transaction() as session:
            for _ in range(min(500, runs - offset)):
                session.add_all(_start_rows(new_id(), StartRequest(NOOP, "bench"), now))


async def wait_succeeded(
    store: Store,
    total: int,
    deadline: float = 120,
    *,
    strict: bool = True,
    exclude_cancelled: bool = False,
) -> None:
    """Until ``total`` runs are finished (or the deadline: an error if ``strict``)."""
    end = time.monotonic() + deadline
    finished = ("succeeded", "cancelled") if exclude_cancelled else ("succeeded",)
    done = 0
    while time.monotonic() < end:
        async with store.transaction() as session:
            done = int(
                await session.scalar(
                    select(func.count()).select_from(RunRow).where(RunRow.status.in_(finished))
                )
                or 0
            )
        if done == total:
            return
        await asyncio.sleep(0.01)
    if strict:
        raise SystemExit(f"only {done}/{total} runs finished in {deadline}s")


async def settle(store: Store) -> int:
    """Stop a backlog the time cap cut off; wait for jobs in flight; return steps done."""
    async with store.transaction() as session:
        await session.execute(
            update(JobRow).where(JobRow.status == "queued").values(status="cancelled")
        )
        await session.execute(
            update(RunRow).where(RunRow.status == "running").values(status="cancelled")
        )
    while True:
        async with store.transaction() as session:
            leased = await session.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.status == "leased")
            )
            done = await session.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.status == "done")
            )
        if not leased:
            return int(done or 0)
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(backend: str, workers: int, args: argparse.Namespace) -> Result:
    async with database(backend) as (url, schema):
        store = Store(url, schema=schema)
        await migrate.upgrade(store)
        await enqueue(store, args.runs)
        procs = [spawn(url, schema, args) for _ in range(workers)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise SystemExit("a worker process did not start")
            started = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            await wait_succeeded(store, args.runs, deadline=args.max_seconds, strict=False)
            seconds = time.perf_counter() - started
            steps = await settle(store)

            # Latency: idle workers, a steady trickle of new runs.
            async with store.transaction() as session:
                before = await session.scalar(select(func.max(JobRow.id))) or 0
            # Well below capacity (a third of it), so the latency is the engine's, not a backlog's.
            rate = max(1.0, min(args.rate, steps / seconds / STEPS / 3))
            trickle = max(5, int(rate * args.trickle_seconds))
            for _ in range(trickle):
                await enqueue(store, 1)
                await asyncio.sleep(1 / rate)
            await wait_succeeded(store, args.runs + trickle, exclude_cancelled=True)
            async with store.transaction() as session:
                rows = (
                    await session.execute(
                        select(JobRow.step_id, JobRow.created_at, JobRow.started_at).where(
                            JobRow.id > before
                        )
                    )
                ).all()
        finally:
            for proc in procs:
                if proc.stdin:
                    proc.stdin.close()
            for proc in procs:
                proc.wait(timeout=30)
        await store.dispose()
    first = [(s - c).total_seconds() * 1000 for step, c, s in rows if step == "one"]
    later = [(s - c).total_seconds() * 1000 for step, c, s in rows if step != "one"]
    return Result(
        backend,
        workers,
        steps,
        seconds,
        percentile(first, 0.5),
        percentile(first, 0.99),
        percentile(later, 0.5),
        percentile(later, 0.99),
    )


class database:
    """A fresh database for one configuration; removed afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.schema: str | None = None
        self.tmp: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> tuple[str, str | None]:
        if self.backend == "sqlite":
            self.tmp = tempfile.TemporaryDirectory(prefix="sb-bench-")
            return f"sqlite+aiosqlite:///{self.tmp.name}/bench.db", None
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
        try:
            await conn.execute(f'CREATE SCHEMA "{self.schema}"')
        finally:
            await conn.close()
        return PG_URL, self.schema

    async def __aexit__(self, *_exc: object) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()
        if self.schema is not None:
            conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


# --------------------------------------------------------------------------- main


def configurations(args: argparse.Namespace) -> list[tuple[str, int]]:
    if args.backend and args.workers:
        return [(args.backend, args.workers)]
    if args.backend == "sqlite":
        return [("sqlite", 1)]
    if args.backend == "postgres":
        return [("postgres", 1), ("postgres", 2)]
    return [("sqlite", 1), ("postgres", 1), ("postgres", 2)]


def table(results: list[Result]) -> str:
    head = (
        "| backend | worker processes | steps | seconds | steps/s | steps/s per process "
        "| first step p50 / p99 ms | next step p50 / p99 ms |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.workers} | {r.steps} | {r.seconds:.2f} "
            f"| {r.steps_per_s:,.0f} | {r.steps_per_s / r.workers:,.0f} "
            f"| {r.first_p50:.1f} / {r.first_p99:.1f} | {r.next_p50:.1f} / {r.next_p99:.1f} |"
        )
    return "\n".join(lines)


async def profile_one(args: argparse.Namespace) -> None:
    """Run the SQLite throughput phase in this process under cProfile."""
    async with database("sqlite") as (url, schema):
        store = Store(url, schema=schema, pool_size=args.concurrency + 2)
        await migrate.upgrade(store)
        await enqueue(store, args.runs)
        engine = Engine(store, {NOOP.name: NOOP}, None, SystemClock(), owner="profile")
        worker = Worker(engine, concurrency=args.concurrency, poll_seconds=args.poll)
        profiler = cProfile.Profile()
        profiler.enable()
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        await wait_succeeded(store, args.runs)
        seconds = time.perf_counter() - started
        profiler.disable()
        worker.stop()
        await task
        await store.dispose()
    print(f"{args.runs * STEPS / seconds:,.0f} steps/s under the profiler")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"])
    parser.add_argument("--workers", type=int, help="worker processes (default: 1; PG 1 and 2)")
    parser.add_argument("--runs", type=int, default=2000, help="runs of 3 steps (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs in flight per worker")
    parser.add_argument("--poll", type=float, default=0.05, help="idle poll interval, seconds")
    parser.add_argument(
        "--rate", type=float, default=100, help="latency phase: at most this many runs/s"
    )
    parser.add_argument("--trickle-seconds", type=float, default=2.0)
    parser.add_argument(
        "--max-seconds", type=float, default=20, help="cap on the throughput phase (default 20)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one SQLite worker")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.url, args.schema, args.concurrency, args.poll))
        return
    if args.profile:
        asyncio.run(profile_one(args))
        return
    results: list[Result] = []
    for backend, workers in configurations(args):
        result = asyncio.run(measure(backend, workers, args))
        results.append(result)
        print(
            f"{backend} x{workers}: {result.steps_per_s:,.0f} steps/s "
            f"({result.seconds:.2f}s for {result.steps} steps)",
            file=sys.stderr,
        )
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "concurrency": args.concurrency,
        "poll_s": args.poll,
    }
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    print(table(results))
    if len([r for r in results if r.backend == "postgres"]) == 2:
        one, two = (r for r in results if r.backend == "postgres")
        print(f"PostgreSQL: 2 workers = {two.steps_per_s / one.steps_per_s:.2f}x one worker")


if __name__ == "__main__":
    main()
