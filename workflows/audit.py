"""The audit trail: append-only records, hash-chained so a change or deletion shows.

A record is written inside the transaction whose change it describes (the step's
result, the decision), so it exists exactly when that change does. Its place in
the chain comes a moment later: ``seal`` gives the records written since the last
seal their ``chain_seq``, ``prev_hash`` and ``hash``, in one short transaction under
one lock (SQLite's writer lock; a PostgreSQL advisory lock). Chaining at append
time would put that global lock inside every step's commit and serialise all
workers; sealing takes it once per batch. Workers seal about once a second and
``verify`` seals before it checks.

Each record's hash covers the previous record's hash and the record's own
canonical JSON. ``verify`` walks the chain in order; an altered record fails its
own hash, a deleted one breaks the link of the record after it. What the chain
cannot show: a record changed or removed before it was sealed (about a second).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.store import Store
from workflows.tables import AuditRow

GENESIS = "0" * 64
_ADVISORY_KEY = 0x5357_4244  # "SWBD"


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``: what the trail keeps instead of raw data."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record_hash(prev_hash: str, row: AuditRow) -> str:
    body = {
        "run_id": row.run_id,
        "step_id": row.step_id,
        "actor": row.actor,
        "action": row.action,
        "detail": row.detail,
        "created_at": row.created_at.isoformat(),
    }
    return hashlib.sha256((prev_hash + digest(body)).encode()).hexdigest()


record_hash = _record_hash
"""What a sealed record's ``hash`` must be given its ``prev_hash`` (the console checks a run's)."""


def record(
    *,
    run_id: str | None,
    step_id: str | None,
    actor: str,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The columns of one new (unsealed) record, for a bulk insert."""
    return {
        "run_id": run_id,
        "step_id": step_id,
        "actor": actor,
        "action": action,
        "detail": detail,
        "created_at": now,
    }


async def append(
    session: AsyncSession,
    *,
    run_id: str | None,
    step_id: str | None,
    actor: str,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> AuditRow:
    """Add one record inside the caller's transaction; ``seal`` chains it later."""
    row = AuditRow(
        **record(run_id=run_id, step_id=step_id, actor=actor, action=action, detail=detail, now=now)
    )
    session.add(row)
    return row


async def seal(store: Store, batch: int = 2000) -> int:
    """Chain the records written since the last seal (oldest first); returns how many."""
    async with store.transaction() as session:
        if session.bind.dialect.name == "postgresql":
            # Sealers in other processes wait here; each then sees the others' work.
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}
            )
        pending = (
            await session.scalars(
                select(AuditRow)
                .where(AuditRow.chain_seq.is_(None))
                .order_by(AuditRow.seq)
                .limit(batch)
            )
        ).all()
        if not pending:
            return 0
        last = (
            await session.execute(
                select(AuditRow.chain_seq, AuditRow.hash)
                .where(AuditRow.chain_seq.is_not(None))
                .order_by(AuditRow.chain_seq.desc())
                .limit(1)
            )
        ).first()
        position, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
        sealed = []
        for row in pending:
            position += 1
            row_hash = _record_hash(prev_hash, row)
            sealed.append({"s": row.seq, "c": position, "p": prev_hash, "h": row_hash})
            prev_hash = row_hash
        table = cast(Table, AuditRow.__table__)
        await (await session.connection()).execute(
            update(table)
            .where(table.c.seq == bindparam("s"))
            .values(chain_seq=bindparam("c"), prev_hash=bindparam("p"), hash=bindparam("h")),
            sealed,
        )
        return len(sealed)


async def seal_all(store: Store) -> int:
    total = 0
    while sealed := await seal(store):
        total += sealed
    return total


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str = ""


async def verify(store: Store, batch: int = 5000) -> VerifyResult:
    """Seal what is pending, then walk the whole chain."""
    await seal_all(store)
    expected_prev = GENESIS
    count = 0
    last = 0
    while True:
        async with store.read() as session:
            rows = (
                await session.scalars(
                    select(AuditRow)
                    .where(AuditRow.chain_seq > last)
                    .order_by(AuditRow.chain_seq)
                    .limit(batch)
                )
            ).all()
        if not rows:  # records written while we walked are checked next time
            return VerifyResult(ok=True, records=count)
        for row in rows:
            if row.prev_hash != expected_prev:
                return VerifyResult(
                    False, count, f"record {row.seq}: the record before it is missing or changed"
                )
            if row.prev_hash is None or _record_hash(row.prev_hash, row) != row.hash:
                return VerifyResult(False, count, f"record {row.seq}: its content was changed")
            expected_prev = row.hash
            count += 1
            last = row.chain_seq or last


async def export(
    store: Store,
    *,
    run_id: str | None = None,
    since: datetime | None = None,
    fmt: Literal["jsonl", "csv"] = "jsonl",
) -> AsyncIterator[str]:
    """Yield the selected records as JSON lines or CSV rows (with a header), sealed first."""
    await seal_all(store)
    query = select(AuditRow).order_by(AuditRow.seq)
    if run_id:
        query = query.where(AuditRow.run_id == run_id)
    if since:
        query = query.where(AuditRow.created_at >= since)
    async with store.read() as session:
        rows = (await session.scalars(query)).all()
    fields = [
        "seq",
        "created_at",
        "run_id",
        "step_id",
        "actor",
        "action",
        "detail",
        "prev_hash",
        "hash",
    ]
    if fmt == "csv":
        yield ",".join(fields) + "\n"
    for row in rows:
        record = {
            "seq": row.seq,
            "created_at": row.created_at.isoformat(),
            "run_id": row.run_id,
            "step_id": row.step_id,
            "actor": row.actor,
            "action": row.action,
            "detail": row.detail,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
        if fmt == "jsonl":
            yield json.dumps(record, sort_keys=True) + "\n"
        else:
            out = io.StringIO()
            record["detail"] = json.dumps(row.detail, sort_keys=True)
            csv.writer(out).writerow([record[f] for f in fields])
            yield out.getvalue()
