"""Modals: submitting and closing them, and applying the app's response_action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import payloads
from ..blockkit_limits import validate_view
from ..delivery import DeliveryResult
from ..methods import ApiError
from ..records import JSON, View
from .interactions import Interactions


class ViewActions(Interactions):
    """view_submission and view_closed (submitted values use the element's selection fields)."""

    def _top_view(self, user_id: str, view_id: str | None) -> View:
        stack = self.workspace.modal_stacks.get(user_id) or []
        if not stack:
            raise LookupError("the user has no open modal")
        if view_id is not None and view_id != stack[-1]:
            raise LookupError(f"view {view_id} is not the user's current modal")
        return self.workspace.views[stack[-1]]

    async def submit_view(
        self, user: str, view_id: str | None = None, values: Mapping[str, Any] | None = None
    ) -> DeliveryResult:
        """A person submits their current modal with ``values``.

        ``values`` maps ``action_id``, ``"block_id.action_id"`` or ``block_id`` (to a
        value, or to ``{action_id: value}``) to the entered value; required inputs
        left empty are refused client-side, as Slack's UI does.
        """
        u = self.user(user)
        view = self._top_view(u.id, view_id)
        view.state = {"values": self._state_values(view, dict(values or {}))}
        view.errors = {}
        trigger = self.workspace.new_trigger(u.id)
        result = await self._deliverer.send_interaction(
            payloads.view_submission(self.workspace, u, view, trigger.id)
        )
        if result.ok:
            result.outcome = self._apply_view_response(u.id, view, result.json())
        return result

    def _state_values(self, view: View, values: dict[str, Any]) -> JSON:
        out: JSON = {}
        previous = view.state.get("values", {})
        for block in view.blocks:
            if block.get("type") != "input" or not isinstance(block.get("element"), dict):
                continue
            el, bid = block["element"], str(block["block_id"])
            aid = str(el.get("action_id"))
            raw = values.get(f"{bid}.{aid}", values.get(aid, values.get(bid)))
            if isinstance(raw, Mapping):
                raw = raw.get(aid)
            if raw is None and aid in previous.get(bid, {}):
                out[bid] = {aid: previous[bid][aid]}
                continue
            if raw is None:  # an untouched element submits its initial value, as in Slack
                raw = _initial(el)
            if (raw is None or raw == "" or raw == []) and not block.get("optional", False):
                raise ValueError(f"required input {bid}.{aid} is empty (Slack would not submit)")
            entry: JSON = {"type": el.get("type")}
            entry.update(self._selection(el, raw))
            out[bid] = {aid: entry}
        return out

    def _apply_view_response(self, user_id: str, view: View, body: Any) -> str:
        ws = self.workspace
        stack = ws.modal_stacks.get(user_id, [])
        action = body.get("response_action") if isinstance(body, dict) else None
        if action is None:
            if view.id in stack:
                stack.remove(view.id)
            return "closed"
        assert isinstance(body, dict)
        if action == "errors":
            input_ids = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
            errors = body.get("errors") or {}
            view.errors = {str(k): str(v) for k, v in errors.items()}
            return "errors" if set(view.errors) <= input_ids else "invalid_errors"
        if action in ("update", "push"):
            spec = body.get("view")
            if validate_view(spec, "modal"):
                return "invalid_view"
            assert isinstance(spec, dict)
            try:
                if action == "update":
                    self._methods.update_view(view, spec)
                    return "updated"
                self._methods.push_view(user_id, spec)
            except ApiError as exc:
                return exc.error
            return "pushed"
        if action == "clear":
            ws.modal_stacks[user_id] = []
            return "cleared"
        return "invalid_response_action"

    async def close_view(self, user: str, view_id: str | None = None) -> DeliveryResult | None:
        """A person closes their modal; view_closed is delivered if ``notify_on_close``."""
        u = self.user(user)
        view = self._top_view(u.id, view_id)
        stack = self.workspace.modal_stacks[u.id]
        cleared = view.clear_on_close
        if cleared:
            stack.clear()
        else:
            stack.remove(view.id)
        if not view.notify_on_close:
            return None
        return await self._deliverer.send_interaction(
            payloads.view_closed(self.workspace, u, view, cleared)
        )


_INITIAL_FIELDS = (
    "initial_value",
    "initial_user",
    "initial_conversation",
    "initial_channel",
    "initial_date",
    "initial_time",
    "initial_users",
    "initial_conversations",
    "initial_channels",
)


def _initial(el: JSON) -> Any:
    """What an element the person did not touch submits: its ``initial_*`` value."""
    option = el.get("initial_option")
    if isinstance(option, dict):
        return option.get("value")
    options = el.get("initial_options")
    if isinstance(options, list):
        return [o.get("value") for o in options if isinstance(o, dict)]
    return next((el[key] for key in _INITIAL_FIELDS if key in el), None)
