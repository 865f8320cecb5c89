"""An ``ask`` step's "Answer" button and the form it opens.

The click is checked on a snapshot (``workflows.asks.may_answer``): someone who may
not answer is told so ephemerally and gets no form. The form is the step's fields
(``templates/form_modal.json.j2``); a submission is checked against them, and then
decided in one transaction (``workflows.asks.answer``): refusals (someone answered
first, the run ended) show under the first field. The step moves on via its signal.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.listeners.forms import form_view, metadata_of, read_state
from bot.listeners.home import HomeTab
from bot.listeners.replies import Replies
from workflows import asks, form_values
from workflows.language.steps.ask import AskStep

ASK_ACTION = "ask:open"
ASK_VIEW = "ask_form"


class AskListeners:
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
        gate_id, user = str(action.get("value", "")), str(body["user"]["id"])
        step, refused = await asks.may_answer(self.deps.store, self.deps.workflows, gate_id, user)
        if refused is not None or step is None or not body.get("trigger_id"):
            text = refused or "This question can't be answered here."
            self.replies.answer(body, client, respond, text, name="ask-ephemeral")
            return
        view = self._view(step, gate_id)
        self.background.spawn(
            client.views_open(trigger_id=str(body["trigger_id"]), view=view), "open-ask-form"
        )

    def _view(self, step: AskStep, gate_id: str) -> dict[str, Any]:
        spec = step.ask
        return form_view(
            self.deps.renderer,
            spec.fields,
            callback_id=ASK_VIEW,
            metadata={"g": gate_id},
            title=spec.button,
            submit="Send",
            # The title may hold expressions of the run's context; the card shows it rendered.
            intro="" if "{" in spec.title else f"*{spec.title}*",
        )

    async def on_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        gate_id, user = str(metadata_of(view).get("g", "")), str(body["user"]["id"])
        raw = read_state(view)
        first = next(iter(raw), "answer")
        step, refused = await asks.may_answer(self.deps.store, self.deps.workflows, gate_id, user)
        if refused is not None or step is None:
            await ack(response_action="errors", errors={first: refused or "This question is gone."})
            return
        parsed = form_values.parse(step.ask.fields, raw)
        if parsed.errors:
            await ack(response_action="errors", errors=parsed.errors)
            return
        result = await asks.answer(
            self.deps.store,
            self.deps.workflows,
            gate_id=gate_id,
            user_id=user,
            values=parsed.values,
            now=self.deps.clock.now(),
        )
        if result.status != "answered":
            await ack(response_action="errors", errors={first: result.message})
            return
        await ack()
        self.deps.wakeup.set()
        self.home.refresh(client, user)
