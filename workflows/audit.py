"""The audit trail: append-only records, hash-chained so a change or deletion shows.

Each record's hash covers the previous record's hash and the record's own
canonical JSON. ``verify`` walks the chain in order; an altered record fails
its own hash, a deleted one breaks the link of the record after it.

Appends are serialised: SQLite has one writer already; on PostgreSQL a
transaction-scoped advisory lock is taken just before the insert, so the chain
never forks and the lock is held only until the surrounding commit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, text
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
    """Add one record to the chain inside the caller's transaction."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    last = await session.scalar(select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1))
    prev_hash = last or GENESIS
    row = AuditRow(
        run_id=run_id,
        step_id=step_id,
        actor=actor,
        action=action,
        detail=detail,
        created_at=now.replace(microsecond=now.microsecond),
        prev_hash=prev_hash,
        hash="",
    )
    row.hash = _record_hash(prev_hash, row)
    session.add(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str = ""


async def verify(store: Store, batch: int = 5000) -> VerifyResult:
    expected_prev = GENESIS
    count = 0
    last_seq = 0
    while True:
        async with store.transaction() as session:
            rows = (
                await session.scalars(
                    select(AuditRow)
                    .where(AuditRow.seq > last_seq)
                    .order_by(AuditRow.seq)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return VerifyResult(ok=True, records=count)
        for row in rows:
            if row.prev_hash != expected_prev:
                return VerifyResult(
                    False, count, f"record {row.seq}: the record before it is missing or changed"
                )
            if _record_hash(row.prev_hash, row) != row.hash:
                return VerifyResult(False, count, f"record {row.seq}: its content was changed")
            expected_prev = row.hash
            count += 1
            last_seq = row.seq


async def export(
    store: Store,
    *,
    run_id: str | None = None,
    since: datetime | None = None,
    fmt: Literal["jsonl", "csv"] = "jsonl",
) -> AsyncIterator[str]:
    """Yield the selected records as JSON lines or CSV rows (with a header)."""
    query = select(AuditRow).order_by(AuditRow.seq)
    if run_id:
        query = query.where(AuditRow.run_id == run_id)
    if since:
        query = query.where(AuditRow.created_at >= since)
    async with store.transaction() as session:
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
