"""Owner and triage card buttons (Claim, Reassign, Close, one-click team picks) and /flow route.

Each is one transaction in ``workflows.routing``; the card and the requester's
thread are updated by the route step when the engine picks up the signal.
Before any of them, ``bot/route_access.py`` checks that the person clicking is
one the request was routed to, a member of the triage channel or an admin; a
refusal is an ephemeral reason and changes nothing.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.listeners.replies import Replies
from bot.replay import SeenRequests, command_key
from bot.route_access import REFUSAL
from workflows import routing

REASSIGN_VIEW = "route_reassign"
GONE = "This request is no longer routed here."


async def refusal_for(deps: BotDeps, assignment_id: str, user: str) -> str | None:
    """Why ``user`` may not act on this assignment, or None if they may."""
    found = await routing.load_with_workflow(deps.store, assignment_id)
    if found is None:
        return GONE
    row, workflow = found
    if deps.route_access is None or not deps.route_access.may_act(row, workflow, user):
        return REFUSAL
    return None


class RoutingListeners:
    def __init__(self, deps: BotDeps, background: Background) -> None:
        self.deps = deps
        self.background = background
        self.replies = Replies(background)  # routing cards are not in App Home
        self.seen = SeenRequests()

    async def on_click(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        if not self._first_time(body):
            return  # a replayed click: the first delivery already acted
        user = str(body["user"]["id"])
        verb = str(action["action_id"]).split(":")[1]
        value = str(action.get("value", ""))
        assignment_id, _, label = value.partition("|")
        refused = await refusal_for(self.deps, assignment_id, user)
        if refused is not None:
            self._tell(respond, refused)
            return
        now = self.deps.clock.now()
        if verb == "reassign":
            ended = await routing.finished_note(self.deps.store, assignment_id)
            if ended is not None:  # no modal for a request whose run ended
                self._tell(respond, ended)
                return
            self.background.spawn(self._open_reassign(client, body, value), "open-reassign")
            return
        if verb == "pick":
            result = await routing.relabel(
                self.deps.store, assignment_id, user, label, now, source="triage"
            )
        elif verb == "claim":
            result = await routing.claim(self.deps.store, value, user, now)
        else:
            result = await routing.close(self.deps.store, value, user, now)
        self.deps.wakeup.set()
        if not result.ok:
            self._tell(respond, result.message)

    async def on_reassign_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = view.get("state", {}).get("values", {})
        selected = (values.get("label", {}).get("label", {}) or {}).get("selected_option") or {}
        label = str(selected.get("value") or "")
        if not label:
            await ack(response_action="errors", errors={"label": "Choose a team."})
            return
        if not self._first_time(body):
            await ack()  # a replayed submission: the first delivery already acted
            return
        assignment_id, user = str(view.get("private_metadata", "")), str(body["user"]["id"])
        # The modal's metadata comes back from the client: check again, and the label too.
        refused = await refusal_for(self.deps, assignment_id, user)
        labels = await routing.labels_for(self.deps.store, self.deps.workflows, assignment_id)
        if refused is None and label not in labels:
            refused = f"{label[:40]} is not a team here."
        if refused is not None:
            await ack(response_action="errors", errors={"label": refused})
            return
        result = await routing.relabel(
            self.deps.store, assignment_id, user, label, self.deps.clock.now(), source="reassign"
        )
        if not result.ok:
            await ack(response_action="errors", errors={"label": result.message})
            return
        await ack()
        self.deps.wakeup.set()

    def _first_time(self, body: dict[str, Any]) -> bool:
        team = (body.get("team") or {}).get("id")
        key = command_key(team, body.get("trigger_id"))
        return key is None or self.seen.first_time(key)

    def _tell(self, respond: AsyncRespond, text: str) -> None:
        self.replies.say(respond, text, name="routing-ephemeral")

    async def _open_reassign(
        self, client: AsyncWebClient, body: dict[str, Any], assignment_id: str
    ) -> None:
        labels = await routing.labels_for(self.deps.store, self.deps.workflows, assignment_id)
        view = self.deps.renderer.render_view(
            "route_reassign_modal", {"assignment_id": assignment_id, "labels": labels}
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)
