"""Engine throughput and queue latency: 3-step runs through real worker processes.

    python -m bench.engine_throughput                          # the standard table (< 2 min)
    python -m bench.engine_throughput --backend postgres --workers 2 --runs 3000
    python -m bench.engine_throughput --workflow realistic --backend postgres --workers 4
    python -m bench.engine_throughput --profile                # cProfile of one SQLite worker

For each configuration a fresh database is migrated (a temporary SQLite file,
or a throw-away PostgreSQL schema), then:

1. **throughput**: ``--runs`` runs of a 3-step workflow are worked by
   ``--workers`` worker processes (``--concurrency`` jobs each) and the clock
   runs until every run has succeeded or ``--max-seconds`` have passed (then
   the backlog is cancelled and the steps done are counted). Reported: steps/s
   in total and per worker process, and runs/s (runs that succeeded in time).
2. **latency**: with the workers idle and polling, runs are enqueued at a steady
   ``--rate`` for a second or two; for every job, enqueue -> step start
   (``jobs.started_at - jobs.created_at``). Reported: p50/p99 for first steps
   (enqueued by another process: found by polling) and next steps (queued by the
   worker that finished the previous step: woken at once).

``--workflow noop`` (the default): quiet ``set`` steps, no chat, no connectors.
The runs are enqueued first; the workers (this script's ``--child``: the
engine's ``Worker``) connect, say ready, and are released together by "go".

``--workflow realistic``: ``post`` (threaded under the run's root message,
which the engine posts itself) -> ``http`` POST to a stand-in API through the
named connection ``ledger`` (the engine sends an ``Idempotency-Key``) ->
``post``; no step is quiet, so each run makes 6 Slack posts (root, 2 posts, 3
step notes) and 1 API call. This process serves the Slack emulator (no
emulated rate limits) and the stand-in API (``--api-delay`` per call) with
uvicorn on loopback; the workers are the real ``switchboard worker`` command,
configured through the environment like a deployment (bench/_realistic.py).
Per-channel chat pacing (a burst, then ~1 post/s per channel, by design) is
set out of the way (SWITCHBOARD_SLACK_POST_BURST / _POSTS_PER_S), and the runs
are spread round-robin over ``--channels`` channels all the same, as real
traffic is. The timing, honestly: the workers are started first and are ready
when each has called ``auth.test`` (the first Slack call of its start-up);
then ~10 warm-up runs per worker are trickled in over a second and waited for,
so every worker is polling and has paid its first-call costs (connections,
template compilation) before the clock starts. The ``--runs`` runs are then
inserted in ONE transaction; the clock starts just before its COMMIT (nothing
is visible to a worker before it). Warm-up runs are not counted. At the end:
a cheap correctness check (no run failed, one API effect per executed ``http``
step counted by distinct Idempotency-Keys, Slack's ``chat.postMessage`` count),
and the CPU seconds of the workers and of this process (emulator + API +
poller) during the throughput phase.

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
from typing import Any

import asyncpg
import yaml
from sqlalchemy import func, select, update

from bench import _realistic as realistic
from workflows import migrate
from workflows.engine import Engine
from workflows.ids import new_id
from workflows.language.workflow import Workflow
from workflows.null_chat import NullChat
from workflows.ports import SystemClock
from workflows.runs import StartRequest, _start_rows, start_run
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
class Load:
    """What the bench starts: runs of ``workflow``, spread round-robin over ``channels``."""

    workflow: Workflow
    channels: tuple[str, ...] = ()
    made: int = 0

    def request(self) -> StartRequest:
        channel = self.channels[self.made % len(self.channels)] if self.channels else None
        self.made += 1
        return StartRequest(self.workflow, "bench", text=f"PO-{self.made:05d}", channel_id=channel)


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
    runs: int = 0
    """Runs that succeeded within the throughput phase."""
    workflow: str = "noop"
    check: str = ""
    ok: bool = True

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds


# --------------------------------------------------------------------------- worker process


async def child(url: str, schema: str | None, concurrency: int, poll: float) -> None:
    """A worker process: connect, say ready, wait for 'go', work until stdin closes."""
    store = Store(url, schema=schema, pool_size=concurrency + 2)
    engine = Engine(
        store=store,
        workflows={NOOP.name: NOOP},
        chat=NullChat(),
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
    command = [sys.executable, "-m", "bench.engine_throughput", "--child", "--url", url]
    command += ["--concurrency", str(args.concurrency), "--poll", str(args.poll)]
    if schema:
        command += ["--schema", schema]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------- one configuration


async def enqueue(store: Store, runs: int, load: Load | None = None) -> None:
    """What ``start_run`` writes (request, run, first job), 500 runs per transaction."""
    load = load or Load(NOOP)
    now = datetime.now(UTC)
    if runs == 1:
        await start_run(store, load.request(), now)
        return
    for offset in range(0, runs, 500):
        async with store.transaction() as session:
            for _ in range(min(500, runs - offset)):
                session.add_all(_start_rows(new_id(), load.request(), now))


async def wait_succeeded(
    store: Store,
    total: int,
    deadline: float = 120,
    *,
    strict: bool = True,
    exclude_cancelled: bool = False,
) -> int:
    """Until ``total`` runs are finished (or the deadline: an error if ``strict``); how many."""
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
            return done
        await asyncio.sleep(0.01)
    if strict:
        raise SystemExit(f"only {done}/{total} runs finished in {deadline}s")
    return done


async def settle(store: Store, until: datetime | None = None) -> int:
    """Stop a backlog the time cap cut off; wait for jobs in flight; return steps done.

    ``until``: count only the steps finished by then (the end of the timed phase), not
    those in flight when the cap struck, nor the rest of their runs continued inline.
    """
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
            counted = [JobRow.status == "done"]
            if until is not None:
                counted.append(JobRow.finished_at <= until)
            done = await session.scalar(select(func.count()).select_from(JobRow).where(*counted))
        if not leased:
            return int(done or 0)
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(backend: str, workers: int, args: argparse.Namespace) -> Result:
    if getattr(args, "workflow", "noop") == "realistic":
        return await measure_realistic(backend, workers, args)
    async with database(backend) as (url, schema):
        store = Store(url, schema=schema)
        await migrate.upgrade(store)
        load = Load(NOOP)
        await enqueue(store, args.runs, load)
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
            runs = await wait_succeeded(store, args.runs, deadline=args.max_seconds, strict=False)
            seconds, ended = time.perf_counter() - started, datetime.now(UTC)
            steps = await settle(store, ended)
            rows = await latency_phase(store, load, args, steps / seconds, args.runs)
        finally:
            for proc in procs:
                if proc.stdin:
                    proc.stdin.close()
            for proc in procs:
                proc.wait(timeout=30)
        await store.dispose()
    return summarise(Result(backend, workers, steps, seconds, 0, 0, 0, 0, runs), rows, "one")


async def latency_phase(
    store: Store, load: Load, args: argparse.Namespace, steps_per_s: float, finished: int
) -> list[Any]:
    """Idle workers, a steady trickle of new runs; (step_id, created_at, started_at) of their jobs.

    ``finished``: the runs already succeeded or cancelled before the trickle.
    """
    async with store.transaction() as session:
        before = await session.scalar(select(func.max(JobRow.id))) or 0
    # Well below capacity (a third of it), so the latency is the engine's, not a backlog's.
    rate = max(1.0, min(args.rate, steps_per_s / len(load.workflow.steps) / 3))
    trickle = max(5, int(rate * args.trickle_seconds))
    for _ in range(trickle):
        await enqueue(store, 1, load)
        await asyncio.sleep(1 / rate)
    await wait_succeeded(store, finished + trickle, exclude_cancelled=True)
    async with store.transaction() as session:
        query = select(JobRow.step_id, JobRow.created_at, JobRow.started_at)
        return list((await session.execute(query.where(JobRow.id > before))).all())


def summarise(result: Result, rows: list[Any], first_step: str) -> Result:
    """``result`` with the latency percentiles of ``rows`` filled in."""
    first = [(s - c).total_seconds() * 1000 for step, c, s in rows if step == first_step]
    later = [(s - c).total_seconds() * 1000 for step, c, s in rows if step != first_step]
    result.first_p50, result.first_p99 = percentile(first, 0.5), percentile(first, 0.99)
    result.next_p50, result.next_p99 = percentile(later, 0.5), percentile(later, 0.99)
    return result


# --------------------------------------------------------------------------- realistic workflow


async def measure_realistic(backend: str, workers: int, args: argparse.Namespace) -> Result:
    """Slack emulator + stand-in API in this process, ``switchboard worker`` processes."""
    async with database(backend) as (url, schema):
        store = Store(url, schema=schema)
        try:
            await migrate.upgrade(store)
            async with realistic.stage(args.api_delay, args.channels) as stage:
                env = realistic.worker_env(stage, url, schema, args.poll)
                procs = realistic.Workers(stage, env, args.concurrency)
                try:
                    await procs.start(workers)
                    return await realistic_phases(store, stage, procs, backend, args)
                except BaseException:
                    print(procs.logs(), file=sys.stderr)
                    raise
                finally:
                    await procs.stop()  # before the schema is dropped and the servers stop
        finally:
            await store.dispose()


async def realistic_phases(
    store: Store,
    stage: realistic.Stage,
    procs: realistic.Workers,
    backend: str,
    args: argparse.Namespace,
) -> Result:
    load = Load(realistic.WORKFLOW, stage.channels)
    await procs.wait_ready()
    warm = await warm_up(store, load, len(procs.procs))
    cpu_before = realistic.own_cpu_seconds(), procs.cpu_seconds()
    steps, runs, seconds = await release_all(store, load, args, warm)
    own, workers_cpu = realistic.own_cpu_seconds(), procs.cpu_seconds()
    rows = await latency_phase(store, load, args, steps / seconds, warm + args.runs)
    ok, check = await realistic.check(store, stage)
    check += (
        f"; CPU s in the throughput phase: workers {workers_cpu - cpu_before[1]:.1f}, "
        f"this process (emulator + API + poller) {own - cpu_before[0]:.1f}"
    )
    result = Result(backend, len(procs.procs), steps, seconds, 0, 0, 0, 0, runs, "realistic")
    result.check, result.ok = check, ok
    return summarise(result, rows, load.workflow.steps[0].id)


async def warm_up(store: Store, load: Load, workers: int) -> int:
    """~10 runs per worker trickled in over a second, then waited for; returns how many."""
    count = 10 * workers
    for _ in range(count):
        await enqueue(store, 1, load)
        await asyncio.sleep(1 / count)
    await wait_succeeded(store, count, deadline=60)
    return count


async def release_all(
    store: Store, load: Load, args: argparse.Namespace, warm: int
) -> tuple[int, int, float]:
    """The throughput phase: ``--runs`` runs in ONE transaction, the clock started just before
    its COMMIT; (steps, runs, seconds), the ``warm`` warm-up runs not counted."""
    now = datetime.now(UTC)
    async with store.transaction() as session:
        for _ in range(args.runs):
            session.add_all(_start_rows(new_id(), load.request(), now))
        await session.flush()
        started = time.perf_counter()
    total = warm + args.runs
    done = await wait_succeeded(store, total, deadline=args.max_seconds, strict=False)
    seconds, ended = time.perf_counter() - started, datetime.now(UTC)
    steps = await settle(store, ended) - warm * len(load.workflow.steps)
    return steps, done - warm, seconds


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
        "| workflow | backend | worker processes | steps | seconds | steps/s | runs/s "
        "| steps/s per process | first step p50 / p99 ms | next step p50 / p99 ms |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        lines.append(
            f"| {r.workflow} | {r.backend} | {r.workers} | {r.steps} | {r.seconds:.2f} "
            f"| {r.steps_per_s:,.0f} | {r.runs_per_s:,.1f} | {r.steps_per_s / r.workers:,.0f} "
            f"| {r.first_p50:.1f} / {r.first_p99:.1f} | {r.next_p50:.1f} / {r.next_p99:.1f} |"
        )
    return "\n".join(lines)


async def profile_one(args: argparse.Namespace) -> None:
    """Run the SQLite throughput phase in this process under cProfile."""
    async with database("sqlite") as (url, schema):
        store = Store(url, schema=schema, pool_size=args.concurrency + 2)
        await migrate.upgrade(store)
        await enqueue(store, args.runs)
        engine = Engine(store, {NOOP.name: NOOP}, NullChat(), SystemClock(), owner="profile")
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
    parser.add_argument("--workflow", choices=["noop", "realistic"], default="noop")
    parser.add_argument(
        "--api-delay", type=float, default=0.01, help="realistic: stand-in API delay, seconds"
    )
    parser.add_argument(
        "--channels", type=int, default=8, help="realistic: Slack channels the runs spread over"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one SQLite worker")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.url, args.schema, args.concurrency, args.poll))
        return
    if args.profile and args.workflow != "noop":
        parser.error("--profile profiles the noop workflow only")
    if args.profile:
        asyncio.run(profile_one(args))
        return
    results: list[Result] = []
    for backend, workers in configurations(args):
        result = asyncio.run(measure(backend, workers, args))
        results.append(result)
        print(
            f"{args.workflow} {backend} x{workers}: {result.steps_per_s:,.0f} steps/s "
            f"({result.seconds:.2f}s for {result.steps} steps, {result.runs} runs)",
            file=sys.stderr,
        )
    print(" ".join(f"{k}={v}" for k, v in run_info(args).items()))
    print(table(results))
    if len([r for r in results if r.backend == "postgres"]) == 2:
        one, two = (r for r in results if r.backend == "postgres")
        print(f"PostgreSQL: 2 workers = {two.steps_per_s / one.steps_per_s:.2f}x one worker")
    for r in results:
        if r.check:
            print(f"{r.backend} x{r.workers}: {r.check}")
    if not all(r.ok for r in results):
        raise SystemExit(1)


def run_info(args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_1m": f"{os.getloadavg()[0]:.2f}",
        "workflow": args.workflow,
        "concurrency": args.concurrency,
        "poll_s": args.poll,
    }
    if args.workflow == "realistic":
        info |= {"api_delay_s": args.api_delay, "channels": args.channels}
    return info


if __name__ == "__main__":
    main()
