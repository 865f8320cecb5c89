"""Chat's side of a run's end (``workflows/lifecycle.py`` decides the data side).

Run by the engine for the run's ``ended`` job, after the transaction that ended
it: the cards of the gates and assignments that end closed are updated in place
(the outbox finds them by their keys: no buttons, who ended the run and when),
the thread is told of a cancel or a timeout, and App Home is published again for
the requester and the approvers. Every message goes through the outbox under a
fixed key, so a retried job updates instead of posting twice; ``views.publish``
replaces a whole view, so publishing twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from workflows import routing
from workflows.expressions import ExpressionError, Expressions
from workflows.inbox import home_data
from workflows.language.steps.approve import ApproveStep
from workflows.language.steps.ask import AskStep
from workflows.language.steps.route import RouteStep
from workflows.language.workflow import Workflow
from workflows.lifecycle import ENDED_STEP
from workflows.null_chat import ChatDisabled
from workflows.outbox import Outbox
from workflows.ports import ChatError, ChatMessage, HomePublisher, MessageRef
from workflows.presence import ROOT_STEP
from workflows.store import Store
from workflows.tables import AssignmentRow, GateRow, RunRow

log = logging.getLogger(__name__)

TOLD_IN_THREAD = ("cancelled", "timed_out")
"""Endings the thread hears of: the others already have their step's note (rejected by …)."""
HOMES_PUBLISHED = 50


class EndingChat:
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        home: HomePublisher,
        workflows: Mapping[str, Workflow],
        expressions: Expressions,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.home = home
        self.workflows = workflows
        self.expressions = expressions

    async def announce(
        self, run: RunRow, payload: Mapping[str, Any], scope: dict[str, Any]
    ) -> None:
        ending = str(payload.get("ending") or run.status)
        at = datetime.fromisoformat(str(payload["at"])) if payload.get("at") else run.finished_at
        ended = {
            "status": ending,
            "by": payload.get("by"),
            "at": f"{at:%Y-%m-%d %H:%M} UTC" if at else "",
        }
        async with self.store.read() as session:
            gates = list(await session.scalars(select(GateRow).where(GateRow.run_id == run.id)))
            assignments = list(
                await session.scalars(select(AssignmentRow).where(AssignmentRow.run_id == run.id))
            )
        workflow = self.workflows.get(run.workflow)
        closed_gates = set(payload.get("gates") or [])
        for gate in gates:
            if gate.id in closed_gates and gate.channel_id and gate.message_ts:
                await _quietly(self._gate_card(run, workflow, gate, ended, scope))
        closed_assignments = set(payload.get("assignments") or [])
        for row in assignments:
            if row.id in closed_assignments and row.channel_id and row.message_ts:
                await _quietly(self._route_card(run, workflow, row, ended, scope))
        thread = await self._thread(run) if ending in TOLD_IN_THREAD else None
        if thread is not None:
            data = {"ended": ended, "run": {"id": run.id, "workflow": run.workflow}}
            message = ChatMessage("run_ended", data)
            await _quietly(
                self.outbox.send(
                    run.id, ENDED_STEP, "ended", thread.channel, message, thread_ts=thread.ts
                )
            )
        people = {run.requester} | {u for gate in gates for u in gate.approvers}
        for user in sorted(p for p in people if p)[:HOMES_PUBLISHED]:
            view = ChatMessage("app_home", await home_data(self.store, user, self.workflows))
            await _quietly(self.home.publish_home(user, view))

    async def _thread(self, run: RunRow) -> MessageRef | None:
        """The run's root. The run row has it once a step's completion committed; a cancel
        can land between the first step posting its card and that commit, and then only
        the outbox knows where the root went."""
        if run.channel_id and run.root_ts:
            return MessageRef(run.channel_id, run.root_ts)
        return await self.outbox.recorded(run.id, ROOT_STEP, "root")

    async def _gate_card(
        self,
        run: RunRow,
        workflow: Workflow | None,
        gate: GateRow,
        ended: dict[str, Any],
        scope: dict[str, Any],
    ) -> None:
        step = workflow.step(gate.step_id) if workflow else None
        if isinstance(step, AskStep):
            await self._question_card(run, step, gate, ended, scope)
            return
        if not isinstance(step, ApproveStep):
            return  # the definition changed: nothing to render the card with
        spec = step.approve
        data = {
            "gate": {
                "id": gate.id,
                "status": gate.status,
                "approvers": gate.approvers,
                "min_approvals": gate.min_approvals,
                "decided_by": gate.decided_by,
                "decided_at": ended["at"],
                "reason": None,
                "level": gate.escalation_level,
            },
            "title": self._evaluate(spec.title, scope, default=workflow.title if workflow else ""),
            "summary": self._evaluate(spec.summary, scope),
            "fields": self._evaluate(spec.fields, scope, default={}),
            "outcomes": [],
            "note": None,
            "ended": ended,
            "run": {"id": run.id, "workflow": run.workflow, "requester": run.requester},
        }
        message = ChatMessage(spec.template, data)
        await self.outbox.send(run.id, gate.step_id, "card", str(gate.channel_id), message)

    async def _question_card(
        self,
        run: RunRow,
        step: AskStep,
        gate: GateRow,
        ended: dict[str, Any],
        scope: dict[str, Any],
    ) -> None:
        """An ask step's question, closed by the run's end: no button, the ending."""
        gate_data = {"id": gate.id, "status": gate.status, "decided_by": None}
        data = {
            "gate": gate_data | {"decided_at": ended["at"]},
            "title": self._evaluate(step.ask.title, scope, default=step.ask.title),
            "text": self._evaluate(step.ask.text, scope, default=""),
            "button": step.ask.button,
            "people": gate.approvers,
            "answer": [],
        }
        message = ChatMessage("ask_card", data)
        await self.outbox.send(run.id, gate.step_id, "card", str(gate.channel_id), message)

    async def _route_card(
        self,
        run: RunRow,
        workflow: Workflow | None,
        row: AssignmentRow,
        ended: dict[str, Any],
        scope: dict[str, Any],
    ) -> None:
        step = workflow.step(row.step_id) if workflow else None
        labels = sorted(step.route.owners) if isinstance(step, RouteStep) else []
        data = {
            "assignment": {
                "id": row.id,
                "label": row.label or routing.TRIAGE,
                "status": row.status,
                "claimed_by": row.claimed_by,
                "owner": row.owner_id,
                "group": None,
                "moved_to": None,
            },
            "ended": ended,
            "labels": labels,
            "request": {
                "text": str(scope.get("input", {}).get("text", "")),
                "requester": run.requester,
            },
            "candidates": [],
            "run": {"id": run.id, "workflow": run.workflow},
        }
        # The key the route step posted this card under (routing's ``_purpose``).
        purpose = (
            "card" if row.label == row.predicted_label else f"card-{row.label or routing.TRIAGE}"
        )
        message = ChatMessage("route_card", data)
        await self.outbox.send(run.id, row.step_id, purpose, str(row.channel_id), message)

    def _evaluate(self, value: Any, scope: dict[str, Any], default: Any = None) -> Any:
        try:
            return self.expressions.evaluate(value, scope) if value is not None else default
        except ExpressionError:
            return default  # the card still says the request ended


async def _quietly(delivery: Any) -> None:
    """A chat without Slack, or a message gone, does not stop the rest; 429/5xx retry."""
    try:
        await delivery
    except ChatDisabled:
        return
    except ChatError as exc:
        if exc.retryable:
            raise
        log.warning("could not update chat after a run ended", extra={"error": str(exc)})
