"""Cancel, retry from a step, remind now: the console's actions, with the Slack rules.

Who may act is decided as ``/flow cancel|retry`` decides it (``bot/listeners/commands.py``):
admins (``RouteAccess.is_admin``) on any run, others on runs they may see
(``workflows.inbox.may_see``: the requester and the people asked to decide); anyone else
is told there is no such run. Cancel and retry are ``workflows.runs.cancel_run`` /
``retry_run`` themselves, so the cards, thread and App Home change exactly as after the
command, and their audit records carry who acted, ``via: console``, ``admin`` and the reason.
The page sends a fresh ``key`` with each confirmed action; it becomes the request key
those functions refuse to use twice, so a double submit acts once.

Remind now queues the approve step's own reminder timer for an open gate (``once``: it
starts no second series, and its messages have keys of their own) and audits
``approval.remind_requested`` with who asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bot.deps import BotDeps
from bot.logs import scrub_tokens
from workflows import audit, runs
from workflows.inbox import may_see
from workflows.tables import AuditRow, GateRow, JobRow, RunRow

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class Actor:
    user_id: str
    admin: bool


class NotVisible(Exception):
    """The run does not exist or the viewer may not see it (the same answer: 404)."""


async def authorise(deps: BotDeps, run_id: str, user_id: str) -> tuple[RunRow, Actor]:
    admin = deps.route_access is not None and deps.route_access.is_admin(user_id)
    try:
        run = await runs.get_run(deps.store, run_id)
    except runs.RunNotFound:
        raise NotVisible(run_id) from None
    if not admin and not await may_see(deps.store, run, user_id):
        raise NotVisible(run_id)  # don't confirm that someone else's run exists
    return run, Actor(user_id, admin)


def _note(actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    note: dict[str, Any] = {"via": "console"} | ({"admin": True} if actor.admin else {})
    reason = str(body.get("reason") or "").strip()
    return note | ({"reason": scrub_tokens(reason)[:200]} if reason else {})


def request_key(body: dict[str, Any]) -> str | None:
    key = str(body.get("key") or "")
    return f"console:{key}" if _KEY.match(key) else None


async def cancel(deps: BotDeps, run: RunRow, actor: Actor, body: dict[str, Any]) -> str:
    now = deps.clock.now()
    note, key = _note(actor, body), request_key(body)
    cancelled = await runs.cancel_run(deps.store, run.id, actor.user_id, now, key, note)
    deps.wakeup.set()  # the `ended` job updates the cards and the thread
    return f"Cancelled run {cancelled.id}."


async def retry(deps: BotDeps, run: RunRow, actor: Actor, body: dict[str, Any]) -> str:
    step = str(body.get("step") or "") or None
    retried = await runs.retry_run(
        deps.store,
        run.id,
        actor.user_id,
        deps.clock.now(),
        request_key(body),
        from_step=step,
        workflow=deps.workflows.get(run.workflow),
        note=_note(actor, body),
    )
    deps.wakeup.set()
    return f"Retrying run {retried.id} from step {retried.current_step}."


async def remind(deps: BotDeps, run: RunRow, actor: Actor, body: dict[str, Any]) -> str:
    """Queue a reminder of the run's open gate now; refused when no gate is open."""
    now = deps.clock.now()
    async with deps.store.transaction() as session:
        locked = await session.get(RunRow, run.id, with_for_update=True)
        if locked is None or locked.status in runs.FINISHED:
            raise runs.RunStateError(f"run {run.id} is already {run.status}")
        gate = await session.scalar(
            select(GateRow)
            .where(GateRow.run_id == run.id, GateRow.status == "open")
            .order_by(GateRow.created_at.desc())
            .limit(1)
        )
        if gate is None:
            raise runs.RunStateError(f"run {run.id} is not waiting for an approval")
        asked = await session.scalar(
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.run_id == run.id, AuditRow.action == "approval.remind_requested")
        )
        payload = {
            "timer": "remind",
            "n": int(asked or 0) + 1,
            "level": gate.escalation_level,
            "once": True,
        }
        session.add(JobRow.queued(run.id, gate.step_id, "timer", now, now, payload))
        await audit.append(
            session,
            run_id=run.id,
            step_id=gate.step_id,
            actor=actor.user_id,
            action="approval.remind_requested",
            detail=_note(actor, body) | {"gate": gate.id},
            now=now,
        )
    deps.wakeup.set()
    return f"Reminding the approvers of step {gate.step_id} now."


ACTIONS = {"cancel": cancel, "retry": retry, "remind": remind}
