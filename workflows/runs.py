"""Operations on runs that people and triggers ask for: start, cancel, retry, look up.

``start_run`` is what sits on Slack's ack path, so it is one short transaction
and nothing else: record the request, the run and its first job. A duplicate
delivery (same ``dedupe_key``: Slack event id, webhook idempotency key,
schedule fire) finds the run the first delivery started.

Every trigger starts through ``start_run``, so this is where request text and
inputs are scrubbed of secrets (``connectors/secrets.py``) before anything is
stored, and request text is cut to its limit (``workflows/request_text.py``):
no trigger can forget either, and nothing downstream (``requests.text``,
``runs.context``, expressions, threads, the AI prompt) ever sees the secret.

The audit trail says who started each run, by which trigger and from where
(``run.started``, written with the run), and who was refused (``run.refused``):
ids only, never request text. Cancel and retry carry the request's key
(``team:trigger_id``) in their audit record and refuse a key already used, so a
replayed command acts once whichever process it reaches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.secrets import Scrubber
from workflows import audit, lifecycle, refusals, row_inserts, start_rows
from workflows.group_commit import GroupCommit
from workflows.ids import new_id
from workflows.language.workflow import Workflow
from workflows.ports import CHAT_WORKSPACE
from workflows.request_text import capped
from workflows.start_rows import StartRequest as StartRequest  # where callers import it
from workflows.store import Store
from workflows.tables import AuditRow, GateRow, JobRow, RequestRow, RunRow

ACTIVE = lifecycle.LIVE
FINISHED = lifecycle.ENDINGS
HANDLED = ("run.cancelled", "run.retried")
"""Audit actions that record the request key they answered (``detail.request``)."""
REPLAYED = "This command was already handled; run it again to repeat it."


@dataclass(frozen=True)
class Started:
    run_id: str
    duplicate: bool


class RunNotFound(Exception):
    pass


class RunStateError(Exception):
    """The run is not in a state that allows the operation; the message says why."""


class AlreadyHandled(RunStateError):
    """This request (its key) already cancelled or retried the run: a replay."""


_scrubber = Scrubber()
"""Credential shapes plus every secret value the process announced (settings, connections)."""


def scrubbed(request: StartRequest) -> StartRequest:
    """``request`` with secrets removed from its text and every string in its input, and its
    text cut to the limit (scrubbed first, so a cut never leaves half a secret behind)."""
    text = capped(_scrubber.text(request.text))
    inputs = _scrubber.value(request.input) if request.input else request.input
    if inputs and isinstance(inputs.get("text"), str):  # a webhook's `text` is input.text
        inputs = inputs | {"text": capped(inputs["text"])}
    if text == request.text and inputs == request.input:
        return request
    return dataclasses.replace(request, text=text, input=inputs)


def source_ids(request: StartRequest) -> dict[str, Any]:
    """Who asked, by which trigger, from where: ids only (never text), scrubbed, capped."""
    inputs = request.input or {}
    schedule = inputs.get("schedule")
    ids: dict[str, Any] = {
        "workflow": request.workflow.name,
        "trigger": request.source,
        "requester": request.user_id,
        "team": request.team_id,
        "channel": request.channel_id,
        "trigger_id": request.trigger_id,
        "message_ts": inputs.get("message_ts"),
        "fire_time": schedule.get("fire_time") if isinstance(schedule, dict) else None,
    }
    key = request.dedupe_key or ""
    if request.source == "webhook":
        ids["idempotency_key"] = key.removeprefix(f"webhook:{request.workflow.name}:")
    elif request.source == "threshold":
        ids["source_key"] = key
    given = {name: str(value) for name, value in ids.items() if value}
    # One scrubber pass over all of them (it is on the ack path), unless a value spans lines.
    parts = _scrubber.text("\n".join(given.values())).split("\n")
    if len(parts) != len(given):
        parts = [_scrubber.text(value) for value in given.values()]
    return {name: part[:255] for name, part in zip(given, parts, strict=True)}


def _in_workspace(request: StartRequest) -> StartRequest:
    """A start names its workspace, or takes the one whose work the caller is doing."""
    current = CHAT_WORKSPACE.get()
    if current is None or request.team_id not in (None, current.team_id):
        return request
    return dataclasses.replace(
        request,
        team_id=current.team_id,
        enterprise_id=request.enterprise_id or current.enterprise_id,
    )


def _start_values(run_id: str, request: StartRequest, now: datetime) -> row_inserts.Rows:
    return start_rows.start_values(run_id, request, now, source_ids(request))


def _start_rows(run_id: str, request: StartRequest, now: datetime) -> list[Any]:
    """The start's rows as ORM objects (for the ORM's sessions: tests, benchmarks, warm-up)."""
    return start_rows.as_models(_start_values(run_id, request, now))


async def start_run(store: Store, request: StartRequest, now: datetime) -> Started:
    """Write the request, its run and the first job; runs started together share a commit.

    One short transaction (``GroupCommit``, the ack's urgent turn at the write lock);
    on SQLite it is one hand-over to the driver's thread (``Store.direct_write``).
    """
    run_id = new_id()
    request = scrubbed(_in_workspace(request))
    starts: GroupCommit[tuple[str, StartRequest, datetime], None] = store.shared(
        "start_run",
        lambda: GroupCommit(store, lambda s, items: _insert_starts(store, s, items), urgent=True),
    )
    try:
        await starts.submit((run_id, request, now))
    except IntegrityError:
        if request.dedupe_key is None:
            raise
        async with store.read() as session:  # the other start committed: a snapshot sees it
            existing = await session.scalar(
                select(RequestRow.id).where(RequestRow.dedupe_key == request.dedupe_key)
            )
        if existing is None:
            raise
        return Started(existing, duplicate=True)
    return Started(run_id, duplicate=False)


async def _insert_starts(
    store: Store, session: AsyncSession, starts: Sequence[tuple[str, StartRequest, datetime]]
) -> list[None]:
    # Rows are made here, per attempt: a batch that failed is retried one start at a time.
    rows: row_inserts.Rows = {}
    for start in starts:
        for table, values in _start_values(*start).items():
            rows.setdefault(table, []).extend(values)
    if store.is_sqlite:  # the session stays unused: no BEGIN, no COMMIT through SQLAlchemy
        await row_inserts.write_now(store, rows)
    else:
        await row_inserts.insert_rows(session, rows)  # one INSERT per table, no ORM flush
    return [None] * len(starts)


async def warm_up(store: Store, workflow: Workflow, now: datetime) -> None:
    """Compile the ack path's statements once at start-up, inside a rolled-back transaction;
    on SQLite also open the start path's own connection (``Store.direct_write``)."""
    async with store.transaction() as session:
        session.add_all(_start_rows(new_id(), StartRequest(workflow, "warm-up"), now))
        await session.flush()
        await session.rollback()
    if store.is_sqlite:
        async with store.transaction():
            await store.direct_write(lambda _conn: None)


async def record_refusal(
    store: Store, request: StartRequest, rule: str, allowed: list[str], now: datetime
) -> None:
    """Audit a start that ``rule`` (allowed_starters | in) refused; nothing else changes.

    Bounded like refused clicks: the first refusal of a person on a workflow, then at most
    one record a minute carrying how many were suppressed (``workflows.refusals``).
    """
    request = scrubbed(request)
    actor = request.user_id or request.source
    detail = {"rule": rule, "allowed": allowed} | source_ids(request)
    subject = f"start:{audit.digest(request.workflow)[:20]}"
    counts = store.shared("start_refusals", refusals.RefusalCounts)
    async with store.transaction(urgent=True) as session:
        suppressed = await refusals.bounded(session, counts, subject, actor[:32], rule, now)
        if suppressed is None:
            return
        await audit.append(
            session,
            run_id=None,
            step_id=None,
            actor=actor,
            action="run.refused",
            detail=detail | {"suppressed": suppressed},
            now=now,
        )


async def get_run(store: Store, run_id: str) -> RunRow:
    """A read-only look-up: on SQLite it neither waits for nor takes the write lock."""
    async with store.read() as session:
        run = await session.get(RunRow, run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


async def _refuse_replay(session: AsyncSession, run_id: str, request_key: str | None) -> None:
    """Raise ``AlreadyHandled`` if ``request_key`` already cancelled or retried this run.

    Runs after the run's row lock, so two processes given the same request serialise here.
    """
    if request_key is None:
        return
    details = await session.scalars(
        select(AuditRow.detail).where(AuditRow.run_id == run_id, AuditRow.action.in_(HANDLED))
    )
    if any(detail.get("request") == request_key for detail in details):
        raise AlreadyHandled(REPLAYED)


def _handled_detail(request_key: str | None) -> dict[str, Any]:
    return {"request": request_key} if request_key else {}


async def cancel_run(
    store: Store,
    run_id: str,
    actor: str,
    now: datetime,
    request_key: str | None = None,
    note: Mapping[str, Any] | None = None,
) -> RunRow:
    """Cancel an unfinished run; ``request_key`` (team:trigger_id) makes a replay a no-op.

    ``note`` (who, why: an admin's reason) joins the audit record."""
    async with store.transaction() as session:
        run = await session.get(RunRow, run_id, with_for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        await _refuse_replay(session, run_id, request_key)
        if run.status in FINISHED:
            raise RunStateError(f"run {run_id} is already {run.status}")
        run.status, run.finished_at, run.updated_at = "cancelled", now, now
        run.version += 1
        # Gates, assignments, timers and the chat side of the end: one decision, one place.
        await lifecycle.close_owned(session, [lifecycle.Ending(run_id, "cancelled", actor)], now)
        await audit.append(
            session,
            run_id=run_id,
            step_id=None,
            actor=actor,
            action="run.cancelled",
            detail=_handled_detail(request_key) | dict(note or {}),
            now=now,
        )
    return run


class UnknownStep(RunStateError):
    """``retry --from`` named a step the run's workflow does not have."""


RETRYABLE = ("failed", "cancelled")
"""Finished runs that resume from where they stopped; any finished run re-runs from a step."""


async def retry_run(
    store: Store,
    run_id: str,
    actor: str,
    now: datetime,
    request_key: str | None = None,
    *,
    from_step: str | None = None,
    workflow: Workflow | None = None,
    note: Mapping[str, Any] | None = None,
) -> RunRow:
    """Resume a finished run: from the step it stopped at, or re-run from ``from_step``.

    From a step, that step and every later one (in the definition's order) lose their
    recorded outputs and run again; earlier outputs stay in the context. ``workflow`` is
    the run's definition (needed with ``from_step``). ``note`` (who, why) joins the audit
    record. A replayed ``request_key``, an unknown step or a run still going changes nothing.
    """
    async with store.transaction() as session:
        run = await session.get(RunRow, run_id, with_for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        await _refuse_replay(session, run_id, request_key)
        rerun = _steps_from(run, workflow, from_step)
        step = from_step or run.current_step
        if run.status in ACTIVE:
            raise RunStateError(f"run {run_id} is still {run.status}; cancel it first")
        if not step or (from_step is None and run.status not in RETRYABLE):
            raise RunStateError(f"run {run_id} {run.status}; name a step to re-run it from")
        if rerun:
            steps = {k: v for k, v in run.context.get("steps", {}).items() if k not in rerun}
            run.context = {**run.context, "steps": steps}
            await retire_gates(session, run_id, rerun, run.version, now)
        run.status, run.error, run.finished_at, run.updated_at = "running", None, None, now
        run.current_step = step
        run.version += 1
        session.add(JobRow.queued(run_id, step, "step", now, now, {"retry": True}))
        detail = _handled_detail(request_key) | ({"from_step": from_step} if from_step else {})
        await audit.append(
            session,
            run_id=run_id,
            step_id=step,
            actor=actor,
            action="run.retried",
            detail=detail | dict(note or {}),
            now=now,
        )
    return run


def _steps_from(run: RunRow, workflow: Workflow | None, step: str | None) -> list[str]:
    """The step ids that run again when retrying from ``step`` (none without one)."""
    if step is None:
        return []
    ids = [s.id for s in workflow.steps] if workflow is not None else []
    if step not in ids:
        raise UnknownStep(f"run {run.id} has no step `{step[:64]}`")
    return ids[ids.index(step) :]


async def retire_gates(
    session: AsyncSession, run_id: str, step_ids: list[str], version: int, now: datetime
) -> None:
    """Move the gates of steps that run again out of the way, so those steps open new ones.

    A gate is unique per (run, step); the old one keeps its decisions under a renamed step
    id (``<step>@retry<version>``) and, if still open, is closed so its card decides nothing.
    """
    gates = await session.scalars(
        select(GateRow).where(GateRow.run_id == run_id, GateRow.step_id.in_(step_ids))
    )
    for gate in gates.all():
        gate.step_id = f"{gate.step_id}@retry{version}"[:128]
        if gate.status == "open":
            gate.status, gate.decided_by, gate.decided_at = "cancelled", "retry", now
