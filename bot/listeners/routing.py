"""Owner and triage card buttons (Claim, Reassign, Close, one-click team picks) and /flow route.

Each is one transaction in ``workflows.routing``; the card and the requester's
thread are updated by the route step when the engine picks up the signal.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from workflows import routing

REASSIGN_VIEW = "route_reassign"


class RoutingListeners:
    def __init__(self, deps: BotDeps, background: Background) -> None:
        self.deps = deps
        self.background = background

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
        verb = str(action["action_id"]).split(":")[1]
        value = str(action.get("value", ""))
        now = self.deps.clock.now()
        if verb == "reassign":
            self.background.spawn(self._open_reassign(client, body, value), "open-reassign")
            return
        if verb == "pick":
            assignment_id, _, label = value.partition("|")
            result = await routing.relabel(
                self.deps.store, assignment_id, user, label, now, source="triage"
            )
        elif verb == "claim":
            result = await routing.claim(self.deps.store, value, user, now)
        else:
            result = await routing.close(self.deps.store, value, user, now)
        self.deps.wakeup.set()
        if not result.ok:
            self.background.spawn(
                respond(text=result.message, response_type="ephemeral", replace_original=False),
                "routing-ephemeral",
            )

    async def on_reassign_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = view.get("state", {}).get("values", {})
        selected = (values.get("label", {}).get("label", {}) or {}).get("selected_option") or {}
        label = str(selected.get("value") or "")
        if not label:
            await ack(response_action="errors", errors={"label": "Choose a team."})
            return
        result = await routing.relabel(
            self.deps.store,
            str(view.get("private_metadata", "")),
            str(body["user"]["id"]),
            label,
            self.deps.clock.now(),
            source="reassign",
        )
        if not result.ok:
            await ack(response_action="errors", errors={"label": result.message})
            return
        await ack()
        self.deps.wakeup.set()

    async def _open_reassign(
        self, client: AsyncWebClient, body: dict[str, Any], assignment_id: str
    ) -> None:
        labels = await routing.labels_for(self.deps.store, self.deps.workflows, assignment_id)
        view = self.deps.renderer.render_view(
            "route_reassign_modal", {"assignment_id": assignment_id, "labels": labels}
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)
