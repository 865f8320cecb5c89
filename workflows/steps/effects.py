"""Durable records of side effects outside chat (an e-mail sent, a transition applied).

A step whose effect cannot be deduplicated by the receiving system (SMTP has no
idempotency key; re-applying a Jira transition is an error) records it once the
system accepted it, keyed by (run, step, purpose) like the outbox's messages — the
record lives in the same ``outbound_messages`` table, under a purpose that names the
effect (``email/sent``), so the table's unique key makes the record one per effect.
A re-executed step (a retry, a worker killed before the step's completion committed)
reads the record and does not repeat the effect.

What remains: a crash after the system accepted the effect and before this record
commits repeats the effect on re-execution. Callers make that repeat harmless where
they can (an e-mail keeps the same ``Message-ID``, so mail systems drop the copy).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workflows.steps.base import StepContext
from workflows.tables import OutboundMessageRow

_VALUE_LENGTH = 32
"""``outbound_messages.ts`` holds 32 characters: a record keeps a short reference."""


async def recorded_effect(ctx: StepContext, purpose: str) -> str | None:
    """The reference recorded for this run's step and ``purpose``, or None if not done yet."""
    async with ctx.store.transaction() as session:
        row = await session.scalar(
            select(OutboundMessageRow.ts).where(
                OutboundMessageRow.run_id == ctx.run_id,
                OutboundMessageRow.step_id == ctx.step.id,
                OutboundMessageRow.purpose == purpose,
            )
        )
    return None if row is None else str(row)


async def record_effect(ctx: StepContext, purpose: str, system: str, reference: str) -> None:
    """Record that the effect happened (``reference``: a short id of it, ≤ 32 characters)."""
    try:
        async with ctx.store.transaction() as session:
            session.add(
                OutboundMessageRow(
                    run_id=ctx.run_id,
                    step_id=ctx.step.id,
                    purpose=purpose,
                    channel_id=system[:_VALUE_LENGTH],
                    ts=reference[:_VALUE_LENGTH],
                    created_at=ctx.clock.now(),
                )
            )
    except IntegrityError:
        return  # a parallel execution of the same job recorded it first: the same effect
