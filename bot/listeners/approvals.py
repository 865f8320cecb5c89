"""Approval buttons and the reject-reason modal.

A click is decided in one transaction (``workflows.approvals.decide``); the
card update and the run's next step are the engine's job, woken at once.
What the clicker sees (a modal, an ephemeral "not allowed") is sent after the
ack by ``Background``.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.listeners.forms import form_view, metadata_of, read_state
from bot.listeners.home import HomeTab
from bot.listeners.replies import Replies, in_app_home, tell
from workflows import form_values
from workflows.approval_policy import APPROVE, REJECT, approve_fields_of, reason_needed
from workflows.approvals import decide, finished_note, load_gate
from workflows.delegation import delegate, may_delegate

REJECT_VIEW = "approval_reject"
DELEGATE_VIEW = "approval_delegate"
APPROVE_VIEW = "approval_approve"
MIN_REASON = 3


class ApprovalListeners:
    def __init__(self, deps: BotDeps, background: Background, home: HomeTab) -> None:
        self.deps = deps
        self.background = background
        self.home = home
        self.replies = Replies(background, home)

    async def on_click(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = str(body["user"]["id"])
        decision = str(action["action_id"]).split(":", 1)[1]
        gate_id = str(action.get("value", ""))
        if decision == "delegate":
            await self._on_delegate_click(client, body, gate_id, user, respond)
            return
        if decision == REJECT:
            self.background.spawn(
                self._open_reject_modal(client, body, gate_id, respond), "open-reject-modal"
            )
            return
        if decision == APPROVE and await self._fields_of(gate_id):
            self.background.spawn(
                self._open_approve_form(client, body, gate_id, respond), "open-approve-form"
            )
            return
        if decision != APPROVE:
            label = await reason_needed(self.deps.store, self.deps.workflows, gate_id, decision)
            if label is not None:  # a custom outcome that asks why, as Reject does
                self.background.spawn(
                    self._open_reject_modal(client, body, gate_id, respond, decision, label),
                    "open-reason-modal",
                )
                return
        result = await decide(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            user_id=user,
            decision=decision,
            reason=None,
            now=self.deps.clock.now(),
        )
        self.deps.wakeup.set()
        if result.status != "resolved" or in_app_home(body):  # App Home shows it decided
            self.replies.answer(body, client, respond, result.message, name="approval-ephemeral")

    async def on_reject_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        reason = str((values.get("reason", {}).get("reason", {}) or {}).get("value") or "").strip()
        if len(reason) < MIN_REASON:
            await ack(
                response_action="errors", errors={"reason": "Please give a reason (a few words)."}
            )
            return
        # "gate" for Reject, "gate|outcome" for a custom outcome that asks why; the
        # outcome is checked against the gate's options by decide like any click.
        gate_id, _, outcome = str(view.get("private_metadata", "")).partition("|")
        result = await decide(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            user_id=str(body["user"]["id"]),
            decision=outcome or REJECT,
            reason=reason,
            now=self.deps.clock.now(),
        )
        if result.status not in ("resolved", "recorded"):
            await ack(response_action="errors", errors={"reason": result.message})
            return
        await ack()
        self.deps.wakeup.set()
        self.home.refresh(client, str(body["user"]["id"]))

    async def _on_delegate_click(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        gate_id: str,
        user: str,
        respond: AsyncRespond,
    ) -> None:
        # Checked before the modal opens, so a requester is told at once and gets no modal.
        ended = await finished_note(self.deps.store, gate_id)
        if ended is not None:
            self.replies.say(respond, ended, name="approval-ephemeral")
            return
        refused = await may_delegate(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            user_id=user,
            now=self.deps.clock.now(),
        )
        if refused is not None:
            self.replies.say(respond, refused.message, name="approval-ephemeral")
            return
        self.background.spawn(
            self._open_modal(client, body, gate_id, respond, "approval_delegate_modal"),
            "open-delegate",
        )

    async def on_delegate_submit(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        values = view.get("state", {}).get("values", {})
        to_user = str(
            (values.get("delegate", {}).get("delegate", {}) or {}).get("selected_user") or ""
        )
        why = str((values.get("why", {}).get("why", {}) or {}).get("value") or "").strip()
        if not to_user:
            await ack(response_action="errors", errors={"delegate": "Choose a person."})
            return
        if len(why) < MIN_REASON:
            await ack(response_action="errors", errors={"why": "Please say why (a few words)."})
            return
        # Our own bot user can't click a card; other bots are never on an approver list
        # unless a workflow names them.
        bots = [context.bot_user_id] if context.bot_user_id else []
        gate_id = str(view.get("private_metadata", ""))
        ended = await finished_note(self.deps.store, gate_id)
        if ended is not None:  # the run ended while the modal was open
            await ack(response_action="errors", errors={"delegate": ended})
            return
        result = await delegate(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            from_user=str(body["user"]["id"]),
            to_user=to_user,
            reason=why,
            now=self.deps.clock.now(),
            not_people=bots,
        )
        if result is None or result.status != "recorded":
            message = result.message if result is not None else "Choose a person."
            await ack(response_action="errors", errors={"delegate": message})
            return
        await ack()
        self.deps.wakeup.set()

    async def _open_modal(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        gate_id: str,
        respond: AsyncRespond,
        template: str,
    ) -> None:
        gate = await load_gate(self.deps.store, gate_id)
        if gate is None or gate.status != "open":
            await tell(respond, "This request has already been decided.")
            return
        view = self.deps.renderer.render_view(template, {"gate_id": gate_id})
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def _open_reject_modal(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        gate_id: str,
        respond: AsyncRespond,
        outcome: str = REJECT,
        label: str = "Reject",
    ) -> None:
        ended = await finished_note(self.deps.store, gate_id)
        if ended is not None:
            await tell(respond, ended)
            return
        gate = await load_gate(self.deps.store, gate_id)
        if gate is None or gate.status != "open":
            await tell(respond, "This request has already been decided.")
            return
        custom = outcome != REJECT
        view = self.deps.renderer.render_view(
            "approval_reject_modal",
            {
                "metadata": f"{gate_id}|{outcome}" if custom else gate_id,
                "title": f"{label}: please say why." if custom else "Rejecting this request.",
                "submit": label if custom else "Reject",
                "heading": label if custom else "Reject request",
            },
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def _fields_of(self, gate_id: str) -> list[Any]:
        return await approve_fields_of(self.deps.store, self.deps.workflows, gate_id)

    async def _open_approve_form(
        self, client: AsyncWebClient, body: dict[str, Any], gate_id: str, respond: AsyncRespond
    ) -> None:
        """Approve asks for the step's approve_fields first (e.g. a cost centre)."""
        ended = await finished_note(self.deps.store, gate_id)
        gate = await load_gate(self.deps.store, gate_id)
        if ended is not None or gate is None or gate.status != "open":
            await tell(respond, ended or "This request has already been decided.")
            return
        view = form_view(
            self.deps.renderer,
            await self._fields_of(gate_id),
            callback_id=APPROVE_VIEW,
            metadata={"g": gate_id},
            title="Approve",
            submit="Approve",
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def on_approve_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        gate_id, user = str(metadata_of(view).get("g", "")), str(body["user"]["id"])
        raw = read_state(view)
        first = next(iter(raw), "approve")
        parsed = form_values.parse(await self._fields_of(gate_id), raw)
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        result = await decide(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            user_id=user,
            decision=APPROVE,
            reason=None,
            now=self.deps.clock.now(),
            answer=parsed.values,
        )
        if result.status not in ("resolved", "recorded"):
            await ack(response_action="errors", errors={first: result.message})
            return
        await ack()
        self.deps.wakeup.set()
        self.home.refresh(client, user)
