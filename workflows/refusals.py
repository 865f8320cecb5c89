"""The audit of refusals, bounded per (subject, person, reason): approval clicks, starts.

Every refused click is answered (the listener sends an ephemeral reason), but a
person hammering a button they may not use must not write a record per click.
Per (gate, user, reason) the first refusal is audited, then at most one per
``WINDOW``; each later record carries ``suppressed``, the refusals not written
since the previous one. A new reason is a new fact and is recorded (a handful
per gate: the reasons are a fixed set of messages). The subject is a gate id for
clicks and ``start:<workflow digest>`` for starts that ``allowed_starters`` or
``in:`` refuse (a flood of messages into a watched channel, say).

Where the state lives:

- ``approval_refusals`` (one row per key, locked ``FOR UPDATE`` on PostgreSQL;
  SQLite has one writer) decides when a record is due, so the bound holds across
  processes and restarts;
- each process touches a key's row at most once per ``WINDOW`` and counts its
  other refusals of that key in memory (``RefusalCounts``), adding them to the row
  on its next touch. Writing the row on every click queued a hammering user's
  clicks on that row lock: 50 at once took seconds and missed Slack's 3 s ack.
  What a crash loses is at most a minute of counts per key of clicks that changed
  nothing; never the first record of a refusal, never a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from workflows import audit
from workflows.tables import GateRow, RefusalRow

WINDOW = timedelta(minutes=1)
_PRUNE_AT = 10_000
Key = tuple[str, str, str]


@dataclass
class _Seen:
    touched_at: datetime
    """When this process last wrote (or began writing) the key's row."""
    count: int = 0
    """Refusals since then, not yet added to the row."""


@dataclass
class RefusalCounts:
    """One process's refusals per key since it last touched the key's row."""

    keys: dict[Key, _Seen] = field(default_factory=dict)

    def count_locally(self, key: Key, now: datetime) -> int | None:
        """None: counted here, no database work. Else: claim the key; the count to carry."""
        seen = self.keys.get(key)
        # ``now`` is read before the transaction, so a click may carry a time a little
        # earlier than the one that claimed the key: that is inside the window too.
        if seen is not None and now - seen.touched_at < WINDOW:
            seen.count += 1
            return None
        if len(self.keys) >= _PRUNE_AT:
            self.keys = {k: s for k, s in self.keys.items() if now - s.touched_at < WINDOW}
        self.keys[key] = _Seen(touched_at=now)  # set before any await: concurrent clicks see it
        return seen.count if seen is not None else 0


async def audit_refusal(
    session: AsyncSession,
    counts: RefusalCounts,
    gate: GateRow,
    user_id: str,
    why: str,
    detail: dict[str, Any],
    now: datetime,
) -> bool:
    """Count one refused click on ``gate``; audit it unless audited within ``WINDOW``."""
    suppressed = await bounded(session, counts, gate.id, user_id, why, now)
    if suppressed is None:
        return False
    await _append(session, gate, user_id, detail | {"why": why}, suppressed, now)
    return True


async def bounded(
    session: AsyncSession,
    counts: RefusalCounts,
    subject: str,
    user_id: str,
    why: str,
    now: datetime,
) -> int | None:
    """Count one refusal of ``user_id`` on ``subject`` (a gate id, a start key).

    ``None``: the same refusal was audited within ``WINDOW``, so write nothing. Else the
    caller writes its record now, carrying the returned number of refusals suppressed
    since the previous one.
    """
    key = (subject, user_id, audit.digest(why)[:16])
    carried = counts.count_locally(key, now)
    if carried is None:
        return None
    counted = await session.execute(
        update(RefusalRow)
        .where(*_key(key), RefusalRow.audited_at > now - WINDOW)
        .values(suppressed=RefusalRow.suppressed + 1 + carried)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], counted).rowcount:
        return None
    state = await _locked(session, key)
    if state is None:
        try:
            async with session.begin_nested():
                session.add(
                    RefusalRow(
                        gate_id=key[0], user_id=key[1], kind=key[2], audited_at=now, suppressed=0
                    )
                )
        except IntegrityError:
            state = await _locked(session, key)  # a concurrent first refusal won
        else:
            return carried
    if state is None:
        raise RuntimeError("approval_refusals: a conflicting row is not visible")
    if now - state.audited_at < WINDOW:
        state.suppressed += 1 + carried
        return None
    suppressed, state.audited_at, state.suppressed = state.suppressed + carried, now, 0
    return suppressed


async def _locked(session: AsyncSession, key: Key) -> RefusalRow | None:
    row: RefusalRow | None = await session.scalar(
        select(RefusalRow)
        .where(*_key(key))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return row


def _key(key: Key) -> tuple[ColumnElement[bool], ...]:
    gate_id, user_id, kind = key
    return (RefusalRow.gate_id == gate_id, RefusalRow.user_id == user_id, RefusalRow.kind == kind)


async def _append(
    session: AsyncSession,
    gate: GateRow,
    user_id: str,
    detail: dict[str, Any],
    suppressed: int,
    now: datetime,
) -> None:
    await audit.append(
        session,
        run_id=gate.run_id,
        step_id=gate.step_id,
        actor=user_id,
        action="approval.denied",
        detail={"gate": gate.id} | detail | {"suppressed": suppressed},
        now=now,
    )
