"""The console's reads at scale: the runs list, a filtered list and a run page, p95.

    python -m bench.console_runs                          # 1,000,000 runs, SQLite and PostgreSQL
    python -m bench.console_runs --runs 100000 --backend sqlite
    python -m bench.console_runs --backend postgres --explain   # + the non-admin list's plan

Per backend, a fresh migrated database (as bench/engine_throughput.py makes them) is
filled with ``--runs`` finished or waiting runs of five workflows and twenty requesters,
a minute apart over the past, bulk-inserted with Core ``insert()``: per run a
``requests`` row (text with a word from a small vocabulary), a ``runs`` row, two ``jobs``
and two ``audit_records``; every tenth run also an approval gate with one decision.
PostgreSQL is ANALYZEd after the fill (autovacuum would have); SQLite is left as the
product leaves it. Then ``--samples`` times each, through the console's own functions
(``bot/console/runs_list.list_runs``, ``run_view.read_run``), timed from call to rows:

- **list**: an admin's first page (50, newest first);
- **list, page 20**: the same, 20 keyset pages deep (a cursor);
- **filtered**: workflow + status, an admin's first page;
- **requester's own**: a non-admin's first page (their runs and those they decide on);
- **time range**: one day, a week ago;
- **run page**: one random run with its jobs, gates, decisions and audit.

The requirement (issue 19): list, filtered list and run page each < 100 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from bench.engine_throughput import database, percentile
from bot.console.run_view import read_run
from bot.console.runs_list import RunQuery, list_runs, list_statement
from workflows import migrate
from workflows.store import Store
from workflows.tables import AuditRow, DecisionRow, GateRow, JobRow, RequestRow, RunRow

WORKFLOWS = ("invoice", "it-access", "inquiries", "compliance-scan", "campaign-report")
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "rejected", "waiting", "cancelled")
WORDS = ("invoice", "laptop", "refund", "access", "tableau", "contract", "travel", "badge")
USERS = [f"U{n:09d}" for n in range(20)]
NOW = datetime(2026, 12, 1, tzinfo=UTC)
LIMIT_MS = 100.0


def _rows(index: int) -> dict[str, list[dict[str, Any]]]:
    run_id = f"r{index:011d}"
    created = NOW - timedelta(minutes=index)
    status = STATUSES[index % len(STATUSES)]
    workflow, user = WORKFLOWS[index % len(WORKFLOWS)], USERS[index % len(USERS)]
    rows: dict[str, list[dict[str, Any]]] = {
        "requests": [
            {
                "id": run_id,
                "source": "command" if index % 4 else "webhook",
                "user_id": user,
                "text": f"{WORDS[index % len(WORDS)]} request number {index}",
                "received_at": created,
            }
        ],
        "runs": [
            {
                "id": run_id,
                "workflow": workflow,
                "status": status,
                "request_id": run_id,
                "requester": user,
                "current_step": "review",
                "context": {"input": {"text": "…"}, "steps": {"fields": {"n": index}}},
                "version": 2,
                "created_at": created,
                "updated_at": created,
                "finished_at": None if status == "waiting" else created + timedelta(seconds=30),
            }
        ],
        "jobs": [
            {
                "run_id": run_id,
                "step_id": step,
                "kind": "step",
                "payload": {},
                "status": "done",
                "due_at": created,
                "attempt": 1,
                "failures": 0,
                "created_at": created,
                "started_at": created,
                "finished_at": created + timedelta(seconds=1),
            }
            for step in ("fields", "review")
        ],
        "audit": [
            {
                "run_id": run_id,
                "step_id": step,
                "actor": user,
                "action": action,
                "detail": {"digest": "0" * 16},
                "created_at": created,
            }
            for step, action in ((None, "run.started"), ("fields", "step.completed"))
        ],
    }
    if index % 10 == 0:
        gate = f"g{index:011d}"
        approvers = [USERS[(index + 1) % len(USERS)], USERS[(index + 2) % len(USERS)]]
        rows["gates"] = [
            {
                "id": gate,
                "run_id": run_id,
                "step_id": "review",
                "status": "open" if status == "waiting" else "approved",
                "approvers": approvers,
                "min_approvals": 1,
                "escalation_level": 0,
                "requester": user,
                "created_at": created,
            }
        ]
        rows["decisions"] = [
            {"gate_id": gate, "user_id": approvers[0], "decision": "approve", "created_at": created}
        ]
    return rows


TABLES = {
    "requests": RequestRow,
    "runs": RunRow,
    "jobs": JobRow,
    "audit": AuditRow,
    "gates": GateRow,
    "decisions": DecisionRow,
}


def _chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(total, start + size))


async def fill(store: Store, runs: int, chunk: int) -> float:
    started = time.perf_counter()
    for indexes in _chunks(runs, chunk):
        batch: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for index in indexes:
            for name, rows in _rows(index).items():
                batch[name] += rows
        async with store.transaction() as session:
            for name, table in TABLES.items():
                if batch[name]:
                    await session.execute(insert(table.__table__), batch[name])
        done = indexes.stop
        if done % (chunk * 20) == 0 or done == runs:
            print(f"  filled {done:,} runs ({time.perf_counter() - started:.0f} s)", flush=True)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def timed(samples: int, call: Callable[[int], Awaitable[Any]]) -> float:
    await call(0)  # compile and warm the statement once
    took = []
    for n in range(samples):
        started = time.perf_counter()
        await call(n + 1)
        took.append((time.perf_counter() - started) * 1000)
    return percentile(took, 0.95)


async def deep_cursor(store: Store, pages: int) -> str | None:
    cursor: str | None = None
    for _ in range(pages):
        params = {"cursor": cursor} if cursor else {}
        cursor = (await list_runs(store, RunQuery.parse(params), "", True))["next"]
    return cursor


async def measure(store: Store, runs: int, samples: int) -> dict[str, float]:
    rng = random.Random(7)
    cursor = await deep_cursor(store, 20)
    week_ago = (NOW - timedelta(days=7)).isoformat()
    day = {"since": week_ago, "until": (NOW - timedelta(days=6)).isoformat()}

    def listing(params: dict[str, str], viewer: str = "", admin: bool = True) -> Any:
        return lambda _n: list_runs(store, RunQuery.parse(params), viewer, admin)

    figures = {
        "list": await timed(samples, listing({})),
        "list, page 20": await timed(samples, listing({"cursor": cursor or ""})),
        "filtered (workflow+status)": await timed(
            samples, listing({"workflow": "it-access", "status": "failed"})
        ),
        "requester's own (non-admin)": await timed(samples, listing({}, USERS[3], False)),
        "time range (one day)": await timed(samples, listing(day)),
        "run page": await timed(
            samples, lambda _n: read_run(store, f"r{rng.randrange(runs):011d}")
        ),
    }
    return figures


async def explain_own_list(store: Store) -> None:
    """PostgreSQL's plan of a non-admin's first page, as EXPLAIN (ANALYZE, BUFFERS) says."""
    statement = list_statement(RunQuery.parse({}), USERS[3], False, store.engine.dialect.name)
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    async with store.read() as session:
        plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        print("\n".join(f"  {line}" for (line,) in plan.all()), flush=True)


async def one_backend(backend: str, args: argparse.Namespace) -> dict[str, float]:
    async with database(backend) as (url, schema):
        store = Store(url, schema=schema)
        try:
            await migrate.upgrade(store)
            print(f"{backend}: filling {args.runs:,} runs", flush=True)
            seconds = await fill(store, args.runs, args.chunk)
            print(f"{backend}: filled in {seconds:.0f} s; measuring", flush=True)
            figures = await measure(store, args.runs, args.samples)
            for name, p95 in figures.items():
                print(f"{backend}: {name}: p95 {p95:.1f} ms", flush=True)
            if args.explain and store.engine.dialect.name == "postgresql":
                await explain_own_list(store)
            return figures
        finally:
            await store.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: print the non-admin list's plan"
    )
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = {backend: asyncio.run(one_backend(backend, args)) for backend in backends}
    print(f"\n{args.runs:,} runs, p95 of {args.samples} samples ({platform.python_version()})")
    print(f"| read | {' | '.join(backends)} |")
    print(f"| --- |{' --- |' * len(backends)}")
    for name in next(iter(results.values())):
        cells = " | ".join(f"{results[b][name]:.1f} ms" for b in backends)
        print(f"| {name} | {cells} |")
    worst = max(
        results[b][name]
        for b in backends
        for name in ("list", "filtered (workflow+status)", "run page")
    )
    verdict = "PASS" if worst < LIMIT_MS else "FAIL"
    print(f"\n{verdict}: list, filtered list and run page p95 ≤ {worst:.1f} ms (< {LIMIT_MS:g})")


if __name__ == "__main__":
    main()
