"""Engine throughput and worker memory with 100,000 runs waiting on approvals in the tables.

    python -m bench.waiting_runs                     # SQLite and PostgreSQL, 100k waiting (~6 min)
    python -m bench.waiting_runs --backend sqlite --waiting 5000 --runs 300 --max-seconds 10

The requirement: no-op throughput with ``--waiting`` runs waiting on an approval
stays within 20 % of the empty-table figure (median waiting / median empty >= 0.80),
and waiting runs cost no memory (a worker process's RSS stays below 200 MB).

Per backend, databases as bench/engine_throughput.py makes them (``database``: a
temporary SQLite file, or a throw-away PostgreSQL schema), migrated:

- **waiting**: one database, filled once with ``--waiting`` runs of a ``purchase``
  workflow (set -> approve with ``remind_every: 1d``, ``timeout: 3d`` -> post) as
  the engine leaves a run waiting at its approve step: a ``requests`` row; a
  ``runs`` row (``waiting``, context with both steps' outputs); two ``done`` step
  jobs; two ``queued`` timer jobs (reminder in a day, timeout in three); an
  ``open`` approval gate with its card's ts; three audit records
  (``step.completed``, ``approval.opened``, ``approval.requested``, sealed into the
  hash chain); four outbox rows (root message, two step notes, the card). They
  are bulk-inserted (Core ``insert()``, ``--chunk`` runs per transaction), not run
  through the engine; the runs started over the last hour, so no timer is due.
  PostgreSQL tables are then ANALYZEd (autovacuum would have, long before a run
  has waited a day; ``--no-analyze`` skips it); SQLite is left as the product
  leaves it (no ANALYZE). The fill time and the row counts are printed.
- **empty**: a fresh database for every round.

``--rounds`` times, alternately on a fresh empty database and on the waiting one,
engine_throughput's throughput phase: ``--runs`` 3-step no-op runs are enqueued,
one worker process (engine_throughput's child: ``Worker``, ``--concurrency`` jobs,
``--poll``) is released and the clock runs until every run has succeeded or
``--max-seconds`` passed; steps/s, and the worker's ``VmRSS`` and peak ``VmHWM``
(``/proc/<pid>/status``) at the end of the phase. Then a fresh worker polls the
same database idle for ``--idle-seconds`` and its RSS and peak are read too.
The verdict compares the medians and the largest peak.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, cast

import yaml
from sqlalchemy import Table, func, insert, select, text, update

from bench import engine_throughput as et
from workflows import audit, migrate
from workflows.ids import new_id
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import (
    AuditRow,
    Base,
    GateRow,
    JobRow,
    OutboundMessageRow,
    RequestRow,
    RunRow,
)

PURCHASE = Workflow.model_validate(
    yaml.safe_load(
        """
        name: purchase
        title: Purchase request
        steps:
          - id: request
            set: {item: "{{ input.text }}"}
          - id: approve
            approve:
              approvers: [U0APPROVER1, U0APPROVER2]
              title: "Purchase: {{ steps.request.item }}"
              remind_every: 1d
              timeout: 3d
              on_timeout: {escalate_to: [U0MANAGER1]}
          - id: order
            post: {text: "Approved, ordering {{ steps.request.item }}"}
        """
    )
)
APPROVERS = ["U0APPROVER1", "U0APPROVER2"]
REQUESTER, CHANNEL, TEAM = "U0REQUESTER", "C0PURCHASES", "T0BENCH"
REMIND, TIMEOUT = timedelta(days=1), timedelta(days=3)
LEASE = timedelta(seconds=30)
MS = timedelta(milliseconds=1)
TABLES = [RequestRow, RunRow, JobRow, GateRow, AuditRow, OutboundMessageRow]
SEALED_COLUMN = "chain_seq" in AuditRow.__table__.c
"""The chain position column of the sealing audit trail (older schemas chain on insert)."""
RSS_LIMIT_MB = 200.0
MIN_RATIO = 0.80

Rows = dict[type[Base], list[dict[str, Any]]]
Memory = tuple[float, float]
"""(VmRSS, VmHWM) of a process, in MB."""


# --------------------------------------------------------------------------- one waiting run


@dataclass
class Chain:
    """The audit hash chain as ``workflows.audit`` builds it (records written sealed)."""

    prev: str = audit.GENESIS
    position: int = 0

    def seal(self, record: dict[str, Any]) -> dict[str, Any]:
        body = {k: record[k] for k in ("run_id", "step_id", "actor", "action", "detail")}
        body["created_at"] = record["created_at"].isoformat()
        digest = hashlib.sha256((self.prev + audit.digest(body)).encode()).hexdigest()
        self.position += 1
        record |= {"prev_hash": self.prev, "hash": digest}
        if SEALED_COLUMN:
            record["chain_seq"] = self.position
        self.prev = digest
        return record


def _job(run_id: str, step: str, kind: str, due: datetime, created: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "step_id": step,
        "kind": kind,
        "payload": {},
        "status": "queued",
        "due_at": due,
        "attempt": 0,
        "failures": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "created_at": created,
        "started_at": None,
        "finished_at": None,
        "error": None,
    }


def _done(job: dict[str, Any], started: datetime, finished: datetime) -> dict[str, Any]:
    return job | {
        "status": "done",
        "attempt": 1,
        "lease_expires_at": started + LEASE,
        "started_at": started,
        "finished_at": finished,
    }


def _audit(
    run_id: str, step: str, action: str, detail: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "step_id": step,
        "actor": "switchboard",
        "action": action,
        "detail": detail,
        "created_at": at,
    }


def _completed(kind: str, ms: float, output: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "ms": ms, "attempt": 1, "output": audit.digest(output)}


def waiting_run(at: datetime, item: str, ts: Iterator[str]) -> Rows:
    """The rows of one run of PURCHASE that the engine left waiting at ``approve``."""
    run_id, gate_id = new_id(), new_id()
    # received, claimed, root, note, request done, gate, card, note, approve done
    t = [at + n * MS for n in (0, 15, 20, 30, 35, 45, 55, 60, 65)]
    root, note1, card, note2 = next(ts), next(ts), next(ts), next(ts)
    request_out = {"item": item}
    approve_out = {"gate": gate_id, "status": "waiting", "approvers": APPROVERS}
    inputs = {"text": item, "user": REQUESTER, "channel": CHANNEL}
    context = {
        "input": inputs,
        "steps": {"request": request_out, "approve": approve_out},
        "source": "command",
    }
    messages = [("_run", "root", root, t[2]), ("request", "result", note1, t[3])]
    messages += [("approve", "card", card, t[6]), ("approve", "result", note2, t[7])]
    return {
        RequestRow: [
            {
                "id": run_id,
                "source": "command",
                "dedupe_key": None,
                "team_id": TEAM,
                "channel_id": CHANNEL,
                "user_id": REQUESTER,
                "text": item,
                "received_at": t[0],
            }
        ],
        RunRow: [
            {
                "id": run_id,
                "workflow": PURCHASE.name,
                "status": "waiting",
                "request_id": run_id,
                "requester": REQUESTER,
                "channel_id": CHANNEL,
                "root_ts": root,
                "current_step": "approve",
                "context": context,
                "error": None,
                "version": 2,
                "created_at": t[0],
                "updated_at": t[8],
                "finished_at": None,
            }
        ],
        JobRow: [
            _done(_job(run_id, "request", "step", t[0], t[0]), t[1], t[4]),
            _done(_job(run_id, "approve", "step", t[4], t[4]), t[4], t[8]),
            _job(run_id, "approve", "timer", t[5] + TIMEOUT, t[8])
            | {"payload": {"timer": "timeout", "level": 0}},
            _job(run_id, "approve", "timer", t[5] + REMIND, t[8])
            | {"payload": {"timer": "remind", "n": 1}},
        ],
        GateRow: [
            {
                "id": gate_id,
                "run_id": run_id,
                "step_id": "approve",
                "status": "open",
                "approvers": APPROVERS,
                "min_approvals": 1,
                "escalation_level": 0,
                "requester": REQUESTER,
                "channel_id": CHANNEL,
                "message_ts": card,
                "decided_by": None,
                "decided_at": None,
                "reason": None,
                "created_at": t[5],
                "timeout_at": t[5] + TIMEOUT,
            }
        ],
        AuditRow: [
            _audit(run_id, "request", "step.completed", _completed("set", 20.0, request_out), t[4]),
            _audit(
                run_id,
                "approve",
                "approval.opened",
                {"gate": gate_id, "approvers": APPROVERS, "min_approvals": 1},
                t[5],
            ),
            _audit(
                run_id,
                "approve",
                "approval.requested",
                _completed("approve", 30.0, approve_out),
                t[8],
            ),
        ],
        OutboundMessageRow: [
            {
                "run_id": run_id,
                "step_id": step,
                "purpose": purpose,
                "channel_id": CHANNEL,
                "ts": ts_,
                "created_at": created,
            }
            for step, purpose, ts_, created in messages
        ],
    }


# --------------------------------------------------------------------------- fill


def _chunk(first: int, size: int, total: int, now: datetime, chain: Chain) -> Rows:
    """Runs ``first .. first+size`` of ``total``, started evenly over the last hour."""
    rows: Rows = {table: [] for table in TABLES}
    ts = (f"{int(now.timestamp())}.{n:06d}" for n in count(first * 4))
    for i in range(first, first + size):
        at = now - timedelta(hours=1) + i * timedelta(hours=1) / total
        for table, items in waiting_run(at, f"{100 + i % 900} EUR laptop #{i}", ts).items():
            rows[table] += items
    rows[AuditRow] = [chain.seal(record) for record in rows[AuditRow]]
    return rows


async def fill(store: Store, total: int, chunk: int) -> float:
    """Bulk-insert ``total`` waiting runs; returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    chain = Chain()
    async with store.read() as session:
        if await session.scalar(select(func.count()).select_from(AuditRow)):
            raise SystemExit("fill needs a fresh database (the audit chain starts at genesis)")
    for first in range(0, total, chunk):
        rows = _chunk(first, min(chunk, total - first), total, now, chain)
        async with store.transaction() as session:
            for table, items in rows.items():
                await session.execute(insert(cast(Table, table.__table__)), items)
    return time.perf_counter() - started


async def analyze(store: Store) -> None:
    async with store.engine.connect() as conn:
        for table in TABLES:
            await conn.execute(text(f"ANALYZE {table.__tablename__}"))
        await conn.commit()


async def row_counts(store: Store) -> dict[str, int]:
    async with store.read() as session:
        return {
            table.__tablename__: int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
            for table in TABLES
        }


# --------------------------------------------------------------------------- worker processes


def memory_mb(pid: int) -> Memory:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def release(proc: subprocess.Popen[str]) -> None:
    """Wait for the child's 'ready', then say 'go'."""
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("a worker process did not start")
    proc.stdin.write("go\n")
    proc.stdin.flush()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    proc.wait(timeout=60)


async def settle(store: Store, after_job: int) -> int:
    """Cancel the no-op backlog the cap cut off, wait for jobs in flight; no-op steps done.

    engine_throughput.settle would cancel every queued job, the waiting runs' timers too.
    """
    async with store.transaction() as session:
        await session.execute(
            update(JobRow)
            .where(JobRow.status == "queued", JobRow.id > after_job)
            .values(status="cancelled")
        )
        await session.execute(
            update(RunRow).where(RunRow.status == "running").values(status="cancelled")
        )
    while True:
        async with store.read() as session:
            leased = await session.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.status == "leased")
            )
            done = await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where(JobRow.status == "done", JobRow.id > after_job)
            )
        if not leased:
            return int(done or 0)
        await asyncio.sleep(0.05)


@dataclass
class Phase:
    steps: int
    seconds: float
    busy: Memory
    idle: Memory
    load: tuple[float, float]

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


async def busy_phase(
    store: Store, url: str, schema: str | None, args: argparse.Namespace
) -> tuple[int, float, Memory]:
    """engine_throughput's throughput phase; (steps, seconds, worker memory at the end)."""
    async with store.read() as session:  # earlier rounds' runs count as succeeded too
        after_job = int(await session.scalar(select(func.max(JobRow.id))) or 0)
        succeeded = await session.scalar(
            select(func.count()).select_from(RunRow).where(RunRow.status == "succeeded")
        )
    await et.enqueue(store, args.runs)
    proc = et.spawn(url, schema, args)
    try:
        release(proc)
        started = time.perf_counter()
        await et.wait_succeeded(
            store, int(succeeded or 0) + args.runs, deadline=args.max_seconds, strict=False
        )
        seconds = time.perf_counter() - started
        memory = memory_mb(proc.pid)
    finally:
        stop(proc)
    return await settle(store, after_job), seconds, memory


async def idle_phase(url: str, schema: str | None, args: argparse.Namespace) -> Memory:
    """A fresh worker polls the database with nothing due; its memory after a while."""
    proc = et.spawn(url, schema, args)
    try:
        release(proc)
        await asyncio.sleep(args.idle_seconds)
        return memory_mb(proc.pid)
    finally:
        stop(proc)


async def measure(store: Store, url: str, schema: str | None, args: argparse.Namespace) -> Phase:
    load_before = os.getloadavg()[0]
    steps, seconds, busy = await busy_phase(store, url, schema, args)
    load_after = os.getloadavg()[0]
    idle = await idle_phase(url, schema, args)
    return Phase(steps, seconds, busy, idle, (load_before, load_after))


# --------------------------------------------------------------------------- one backend


@dataclass
class Case:
    backend: str
    waiting: int
    fill_seconds: float
    phases: list[Phase]

    @property
    def steps_per_s(self) -> float:
        return statistics.median(p.steps_per_s for p in self.phases)

    @property
    def peak_mb(self) -> float:
        return max(max(p.busy[1], p.idle[1]) for p in self.phases)


async def prepare(store: Store, backend: str, args: argparse.Namespace) -> float:
    """Migrate and fill the waiting runs; print what was written. Returns the fill's seconds."""
    await migrate.upgrade(store)
    seconds = await fill(store, args.waiting, args.chunk)
    print(f"{backend}: {args.waiting:,} waiting runs written in {seconds:.1f}s", flush=True)
    if not store.is_sqlite and not args.no_analyze:
        await analyze(store)
    if args.verify_audit:
        print(f"{backend}: audit chain {await audit.verify(store)}", flush=True)
    counts = await row_counts(store)
    print(" ".join(f"{k}={v:,}" for k, v in counts.items()), flush=True)
    return seconds


async def measure_empty(backend: str, args: argparse.Namespace) -> Phase:
    async with et.database(backend) as (url, schema):
        store = Store(url, schema=schema)
        try:
            await migrate.upgrade(store)
            return await measure(store, url, schema, args)
        finally:
            await store.dispose()


def progress(case: Case) -> None:
    p = case.phases[-1]
    print(
        f"{case.backend} waiting={case.waiting:,} round {len(case.phases)}: "
        f"{p.steps_per_s:,.0f} steps/s ({p.seconds:.2f}s for {p.steps} steps), "
        f"worker RSS {p.busy[0]:.0f} MB",
        file=sys.stderr,
        flush=True,
    )


async def run_backend(backend: str, args: argparse.Namespace) -> list[Case]:
    """Fill one database once; alternate rounds on a fresh empty database and on it."""
    empty = Case(backend, 0, 0.0, [])
    async with et.database(backend) as (url, schema):
        store = Store(url, schema=schema)
        try:
            full = Case(backend, args.waiting, await prepare(store, backend, args), [])
            for _ in range(args.rounds):
                empty.phases.append(await measure_empty(backend, args))
                progress(empty)
                full.phases.append(await measure(store, url, schema, args))
                progress(full)
        finally:
            await store.dispose()
    return [empty, full]


# --------------------------------------------------------------------------- report


def table(cases: list[Case]) -> str:
    head = (
        "| backend | waiting runs | fill s | steps/s per round | median steps/s | vs empty "
        "| busy worker RSS / peak MB | idle worker RSS / peak MB | load 1m |"
    )
    lines = [head, "|" + "---|" * 9]
    empty = {c.backend: c.steps_per_s for c in cases if not c.waiting}
    for c in cases:
        last = c.phases[-1]
        rounds = ", ".join(f"{p.steps_per_s:,.0f}" for p in c.phases)
        busy_peak = max(p.busy[1] for p in c.phases)
        idle_peak = max(p.idle[1] for p in c.phases)
        loads = [x for p in c.phases for x in p.load]
        lines.append(
            f"| {c.backend} | {c.waiting:,} | {c.fill_seconds:.1f} | {rounds} "
            f"| {c.steps_per_s:,.0f} | {c.steps_per_s / empty[c.backend]:.2f}x "
            f"| {last.busy[0]:.0f} / {busy_peak:.0f} | {last.idle[0]:.0f} / {idle_peak:.0f} "
            f"| {min(loads):.1f}-{max(loads):.1f} |"
        )
    return "\n".join(lines)


def verdicts(cases: list[Case]) -> list[str]:
    """One line per backend: median throughput ratio and peak worker memory vs the targets."""
    lines = []
    for empty, full in zip(cases[::2], cases[1::2], strict=True):
        ratio = full.steps_per_s / empty.steps_per_s if empty.steps_per_s else 0.0
        fast = "PASS" if ratio >= MIN_RATIO else "FAIL"
        small = "PASS" if full.peak_mb < RSS_LIMIT_MB else "FAIL"
        lines.append(
            f"{full.backend}: throughput with {full.waiting:,} waiting runs {ratio:.2f}x of empty "
            f"(target >= {MIN_RATIO:.2f}) {fast}; worker peak RSS {full.peak_mb:.0f} MB "
            f"(empty: {empty.peak_mb:.0f}; target < {RSS_LIMIT_MB:.0f}) {small}"
        )
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], help="default: both")
    parser.add_argument("--waiting", type=int, default=100_000, help="runs waiting on approvals")
    parser.add_argument("--runs", type=int, default=1000, help="no-op runs of 3 steps")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each (median)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="jobs in flight per worker (default 32, as `switchboard worker`)",
    )
    parser.add_argument("--poll", type=float, default=0.05, help="idle poll interval, seconds")
    parser.add_argument(
        "--max-seconds", type=float, default=20, help="cap on the throughput phase (default 20)"
    )
    parser.add_argument("--idle-seconds", type=float, default=5, help="idle worker's polling")
    parser.add_argument("--chunk", type=int, default=2000, help="waiting runs per transaction")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: skip ANALYZE")
    parser.add_argument("--verify-audit", action="store_true", help="verify the audit chain")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    cases: list[Case] = []
    for backend in [args.backend] if args.backend else ["sqlite", "postgres"]:
        cases += asyncio.run(run_backend(backend, args))
    info = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "poll_s": args.poll,
        "max_seconds": args.max_seconds,
    }
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    print(table(cases))
    lines = verdicts(cases)
    print("\n".join(lines))
    print(f"Verdict: {'FAIL' if any('FAIL' in line for line in lines) else 'PASS'}")


if __name__ == "__main__":
    main()
