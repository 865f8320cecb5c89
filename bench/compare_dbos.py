"""The same 3-step durable no-op workflow on DBOS Transact and on Switchboard's engine.

    python -m bench.compare_dbos                         # SQLite and PostgreSQL, 2000 runs each
    python -m bench.compare_dbos --backend postgres --runs 3000

Switchboard's side is bench/engine_throughput.py's runner, unchanged (one
``Worker`` process, ``--concurrency`` jobs in flight, ``--poll`` idle poll).
DBOS's side runs in its own process (DBOS is a process-wide singleton) with the
same shape, configured as its documentation describes:

1. **throughput**: ``--runs`` workflows of three no-op ``@DBOS.step`` functions
   are enqueued (``DBOSClient.enqueue``) on a queue no executor listens to yet;
   then the queue is registered (``worker_concurrency=--concurrency``,
   ``polling_interval_sec=--poll``) and the clock runs until every workflow is
   ``SUCCESS`` (counted in ``workflow_status``).
2. **latency**: with the executor idle, workflows are enqueued at a steady rate
   (a third of the measured capacity, at most ``--rate``); enqueue -> start is
   ``workflow_status.started_at_epoch_ms - created_at``. Switchboard's figure is
   its first step's ``jobs.started_at - created_at`` (a job enqueued by another
   process and found by polling: the same situation).

Both use a fresh database per backend (a temporary SQLite file, or a throw-away
PostgreSQL schema in the ``test`` database). The verdict states the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench import engine_throughput as sb_bench

PG_RAW = sb_bench.PG_URL.replace("+asyncpg", "")


@dataclass
class Figures:
    system: str
    backend: str
    steps: int
    seconds: float
    start_p50_ms: float
    start_p99_ms: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def runs_per_s(self) -> float:
        return self.steps_per_s / 3


# --------------------------------------------------------------------------- DBOS (child process)


def dbos_child(args: argparse.Namespace) -> None:
    """One DBOS executor: throughput, then enqueue -> start latency; one JSON line on stdout."""
    import sqlalchemy as sa
    from dbos import DBOS, DBOSClient, DBOSConfig

    @DBOS.step()
    def one() -> int:
        return 1

    @DBOS.step()
    def two() -> int:
        return 2

    @DBOS.step()
    def three() -> int:
        return 3

    @DBOS.workflow(name="bench_noop")
    def noop() -> int:
        return one() + two() + three()

    tmp = tempfile.TemporaryDirectory(prefix="sb-dbos-")
    schema = None
    if args.backend == "sqlite":
        url = f"sqlite:///{tmp.name}/dbos.sqlite"
    else:
        url = PG_RAW
        schema = f"dbos_{uuid.uuid4().hex[:10]}"
    config: DBOSConfig = {
        "name": "switchboard-bench",
        "system_database_url": url,
        "log_level": "WARNING",
        "sys_db_pool_size": args.concurrency + 4,
    }
    if schema:
        config["dbos_system_schema"] = schema
    DBOS(config=config)
    DBOS.launch()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    table = f'"{schema}".workflow_status' if schema else "workflow_status"

    def succeeded() -> int:
        with engine.connect() as conn:
            count = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE status = 'SUCCESS'")
            ).scalar()
        return int(count or 0)

    try:
        client_kwargs: dict[str, Any] = {"system_database_url": url}
        if schema:
            client_kwargs["dbos_system_schema"] = schema
        client = DBOSClient(**client_kwargs)
        for _ in range(args.runs):
            client.enqueue({"queue_name": "bench", "workflow_name": "bench_noop"})
        started = time.perf_counter()
        queue = DBOS.register_queue(
            "bench", worker_concurrency=args.concurrency, polling_interval_sec=args.poll
        )
        deadline = started + args.max_seconds
        finished = 0
        while time.perf_counter() < deadline:
            finished = succeeded()
            if finished >= args.runs:
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        # Latency: idle executor, a steady trickle enqueued in-process.
        rate = min(args.rate, finished / seconds / 3)
        trickle = max(5, int(rate * args.trickle_seconds))
        before = time.time() * 1000
        for _ in range(trickle):
            queue.enqueue(noop)
            time.sleep(1 / rate)
        end = time.perf_counter() + 60
        while succeeded() < finished + trickle and time.perf_counter() < end:
            time.sleep(0.02)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT started_at_epoch_ms - created_at FROM {table} "
                    "WHERE created_at >= :before AND started_at_epoch_ms IS NOT NULL"
                ),
                {"before": before},
            ).all()
        lat = [float(r[0]) for r in rows]
        client.destroy()
        print(
            json.dumps(
                {
                    "steps": finished * 3,
                    "seconds": seconds,
                    "p50": sb_bench.percentile(lat, 0.5),
                    "p99": sb_bench.percentile(lat, 0.99),
                    "version": _dbos_version(),
                }
            ),
            flush=True,
        )
    finally:
        DBOS.destroy(destroy_registry=True)
        engine.dispose()
        if schema:
            with sa.create_engine(
                PG_RAW.replace("postgresql://", "postgresql+psycopg://")
            ).begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        tmp.cleanup()


def _dbos_version() -> str:
    from importlib.metadata import version

    return version("dbos")


def run_dbos(backend: str, args: argparse.Namespace) -> tuple[Figures, str]:
    command = [sys.executable, "-m", "bench.compare_dbos", "--dbos-child", "--backend", backend]
    for name in ("runs", "concurrency", "poll", "rate", "trickle_seconds", "max_seconds"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=args.max_seconds + 180, check=False
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"DBOS child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(line)
    figures = Figures("DBOS", backend, data["steps"], data["seconds"], data["p50"], data["p99"])
    return figures, str(data["version"])


def run_switchboard(backend: str, args: argparse.Namespace) -> Figures:
    try:
        result = asyncio.run(sb_bench.measure(backend, 1, args))
    except ZeroDivisionError:  # engine_throughput's latency phase when no step finished in time
        nan = float("nan")
        return Figures("Switchboard", backend, 0, args.max_seconds, nan, nan)
    return Figures(
        "Switchboard",
        backend,
        result.steps,
        result.seconds,
        result.first_p50,
        result.first_p99,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="jobs in flight (both)")
    parser.add_argument("--poll", type=float, default=0.05, help="idle poll interval (both)")
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--trickle-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--dbos-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dbos_child:
        dbos_child(args)
        return
    backends = [args.backend] if args.backend else ["sqlite", "postgres"]
    print(
        f"python={platform.python_version()} cpus={os.cpu_count()} runs={args.runs} "
        f"concurrency={args.concurrency} poll_s={args.poll} load_1m={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rows: list[tuple[Figures, Figures]] = []
    version = "?"
    for backend in backends:
        sb = run_switchboard(backend, args)
        print(f"switchboard {backend}: {sb.steps_per_s:,.0f} steps/s", file=sys.stderr, flush=True)
        dbos, version = run_dbos(backend, args)
        print(f"dbos {backend}: {dbos.steps_per_s:,.0f} steps/s", file=sys.stderr, flush=True)
        rows.append((sb, dbos))
    print(f"dbos=={version} load_1m_after={os.getloadavg()[0]:.2f}")
    print(
        "| backend | system | steps | seconds | steps/s | runs/s "
        "| enqueue->start p50 / p99 ms |\n|---|---|---|---|---|---|---|"
    )
    for pair in rows:
        for f in pair:
            print(
                f"| {f.backend} | {f.system} | {f.steps} | {f.seconds:.2f} | {f.steps_per_s:,.0f} "
                f"| {f.runs_per_s:,.0f} | {f.start_p50_ms:.1f} / {f.start_p99_ms:.1f} |"
            )
    verdicts = []
    for sb, dbos in rows:
        ratio = sb.steps_per_s / dbos.steps_per_s if dbos.steps else float("nan")
        lat = sb.start_p50_ms / dbos.start_p50_ms if dbos.start_p50_ms else float("nan")
        verdicts.append(
            f"{sb.backend}: Switchboard/DBOS throughput {ratio:.2f}x, "
            f"enqueue->start p50 ratio {lat:.2f}x"
        )
    print("VERDICT: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
