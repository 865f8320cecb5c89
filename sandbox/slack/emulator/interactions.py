"""Clicks and picks in interactive elements of messages, ephemerals and views."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import payloads
from ..delivery import DeliveryResult
from ..records import JSON, Ephemeral, Message, View
from .core import EmulatorCore

# Element type → the field a block_actions action / view state carries the choice in.
SELECTED_FIELD = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
OPTION_ELEMENTS = {"static_select", "radio_buttons", "overflow", "external_select"}
MULTI_OPTION_ELEMENTS = {"multi_static_select", "checkboxes", "multi_external_select"}


class Interactions(EmulatorCore):
    """block_actions: find the element, build Slack's action payload, keep view state."""

    async def click(
        self,
        user: str,
        message_or_ts: str | Mapping[str, Any] | Message | Ephemeral,
        action_id: str,
        value: Any = None,
        *,
        channel: str | None = None,
        block_id: str | None = None,
    ) -> DeliveryResult:
        """A person clicks (or picks in) an interactive element of a message, ephemeral or view.

        ``message_or_ts`` is a message ts / dict / Message, an Ephemeral, or a view id.
        """
        u = self.user(user)
        ws = self.workspace
        trigger = ws.new_trigger(u.id)
        if isinstance(message_or_ts, str) and message_or_ts in ws.views:
            view = ws.views[message_or_ts]
            action = self._action(view.blocks, action_id, value, block_id)
            self._apply_action_to_state(view, action)
            payload = payloads.block_actions(ws, u, [action], trigger.id, view=view)
            return await self._deliverer.send_interaction(payload)
        if isinstance(message_or_ts, Ephemeral) or (
            isinstance(message_or_ts, Mapping) and message_or_ts.get("source") is not None
        ):
            eph = (
                message_or_ts
                if isinstance(message_or_ts, Ephemeral)
                else self._ephemeral(message_or_ts)
            )
            ch = self.channel(eph.channel)
            action = self._action(eph.blocks or [], action_id, value, block_id)
            ru = ws.new_response_url(
                u.id, ch.id, eph.ts, is_ephemeral=True, thread_ts=eph.thread_ts
            )
            payload = payloads.block_actions(
                ws,
                u,
                [action],
                trigger.id,
                channel=ch,
                message_ts=eph.ts,
                is_ephemeral=True,
                response_url=self._response_url(ru.id),
            )
            return await self._deliverer.send_interaction(payload)
        msg = self._message(message_or_ts, channel)
        ch = self.channel(msg.channel)
        # Anyone in the workspace can open a public channel and click in it; private ones
        # only their members.
        if ch.is_private and u.id not in ch.members:
            raise PermissionError(f"{u.name} cannot see {ch.name}")
        action = self._action(msg.blocks or [], action_id, value, block_id)
        ru = ws.new_response_url(
            u.id, ch.id, msg.ts, thread_ts=msg.thread_ts if msg.is_reply else None
        )
        payload = payloads.block_actions(
            ws,
            u,
            [action],
            trigger.id,
            channel=ch,
            message=ws.message_dict(msg, include_metadata=False),
            message_ts=msg.ts,
            response_url=self._response_url(ru.id),
        )
        return await self._deliverer.send_interaction(payload)

    def _ephemeral(self, data: Mapping[str, Any]) -> Ephemeral:
        for eph in self.workspace.ephemerals:
            if eph.ts == data.get("ts") and eph.user == data.get("user"):
                return eph
        raise KeyError(f"no ephemeral message with ts {data.get('ts')!r}")

    @staticmethod
    def _find_element(
        blocks: list[JSON], action_id: str, block_id: str | None
    ) -> tuple[JSON, JSON]:
        for block in blocks:
            if block_id is not None and block.get("block_id") != block_id:
                continue
            candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
            candidates += [
                block[k] for k in ("accessory", "element") if isinstance(block.get(k), dict)
            ]
            for el in candidates:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    return block, el
        raise LookupError(f"no interactive element with action_id {action_id!r}")

    def _action(self, blocks: list[JSON], action_id: str, value: Any, block_id: str | None) -> JSON:
        block, el = self._find_element(blocks, action_id, block_id)
        kind = str(el.get("type"))
        action: JSON = {"action_id": action_id, "block_id": block["block_id"], "type": kind}
        if kind == "button":
            action["text"] = el.get("text")
            chosen = value if value is not None else el.get("value")
            if chosen is not None:
                action["value"] = chosen
            if "style" in el:
                action["style"] = el["style"]
        else:
            action.update(self._selection(el, value))
        action["action_ts"] = f"{time.time():.6f}"
        return action

    @staticmethod
    def _selection(el: JSON, value: Any) -> JSON:
        """The state / action fields Slack reports for a chosen ``value`` in element ``el``."""
        kind = str(el.get("type"))
        options = list(el.get("options") or [])
        for group in el.get("option_groups") or []:
            options += group.get("options") or []

        def option(v: Any) -> JSON:
            for opt in options:
                if opt.get("value") == v:
                    return dict(opt)
            return {"text": {"type": "plain_text", "text": str(v)}, "value": v}

        if kind in OPTION_ELEMENTS:
            return {"selected_option": option(value) if value is not None else None}
        if kind in MULTI_OPTION_ELEMENTS:
            return {"selected_options": [option(v) for v in (value or [])]}
        if kind in SELECTED_FIELD:
            return {SELECTED_FIELD[kind]: value}
        return {"value": value}

    def _apply_action_to_state(self, view: View, action: JSON) -> None:
        entry = {
            k: v
            for k, v in action.items()
            if k not in ("action_id", "block_id", "action_ts", "text")
        }
        view.state.setdefault("values", {}).setdefault(action["block_id"], {})[
            action["action_id"]
        ] = entry
