"""State and operations every Web API surface shares: channel lookup, content
validation, and storing a message so Slack's events follow.

Changes that Slack would announce to the app (new messages, edits, deletions,
reactions) are handed to the event sink; the emulator decides whether the app is
subscribed.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

from .. import payloads
from ..blockkit_limits import MESSAGE_TEXT_MAX, Surface, validate_blocks
from ..records import JSON, Channel, Message
from ..state import Workspace
from .args import ApiError, Args, error_messages

EventSink = Callable[[JSON], None]

TRIGGER_TTL_SECONDS = 3.0


class MethodsBase:
    """The workspace, the event sink and the helpers each surface's methods build on."""

    def __init__(
        self, ws: Workspace, events: EventSink, trigger_ttl: float = TRIGGER_TTL_SECONDS
    ) -> None:
        self.ws = ws
        self.events = events
        self.trigger_ttl = trigger_ttl
        self.upload_base = ""

    def _readable_channel(self, ref: str | None) -> Channel:
        """A conversation the bot can see (private ones only when it is a member)."""
        if not ref:
            raise ApiError("channel_not_found")
        ch = self.ws.find_channel(ref)
        if ch is None:
            raise ApiError("channel_not_found")
        if ch.is_private and self.ws.bot_user_id not in ch.members:
            raise ApiError("channel_not_found")
        return ch

    def _member_channel(self, ref: str | None) -> Channel:
        ch = self._readable_channel(ref)
        if self.ws.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        return ch

    def _post_target(self, ref: str | None) -> Channel:
        """chat.postMessage accepts a channel id, #name, or a user id (the app DM)."""
        if ref and ref.startswith(("U", "W")) and ref in self.ws.users:
            im = self.ws.im_with(ref)
            assert im is not None
            return im
        ch = self._readable_channel(ref)
        if ch.is_archived:
            raise ApiError("is_archived")
        return ch

    def _content(
        self, args: Args, surface: Surface = "message", require: bool = True
    ) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
        text = args.opt("text")
        blocks = args.json("blocks", "invalid_blocks_format")
        attachments = args.json("attachments", "invalid_attachments")
        if blocks is not None:
            errors = validate_blocks(blocks, surface)
            if errors:
                raise ApiError(
                    "invalid_blocks", errors=errors, response_metadata=error_messages(errors)
                )
            blocks = self._fill_ids(blocks)
        if attachments is not None and not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        if require and not text and not blocks and not attachments:
            raise ApiError("no_text")
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            raise ApiError("msg_too_long")
        return text, blocks, attachments

    @staticmethod
    def _fill_ids(blocks: list[JSON]) -> list[JSON]:
        """Slack assigns a random block_id / action_id where the app gave none."""
        out = copy.deepcopy(blocks)
        for block in out:
            block.setdefault("block_id", secrets.token_urlsafe(4)[:5])
            elements = list(block.get("elements") or [])
            for key in ("accessory", "element"):
                if isinstance(block.get(key), dict):
                    elements.append(block[key])
            for el in elements:
                if (
                    isinstance(el, dict)
                    and el.get("type") not in (None, "mrkdwn", "plain_text", "image")
                    and "action_id" not in el
                    and block.get("type") != "rich_text"
                ):
                    el["action_id"] = secrets.token_urlsafe(4)[:5]
        return out

    def _metadata(self, args: Args) -> JSON | None:
        meta = args.json("metadata", "invalid_metadata_format")
        if meta is None:
            return None
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("event_type"), str)
            or not isinstance(meta.get("event_payload", {}), dict)
        ):
            raise ApiError("invalid_metadata_schema")
        return {"event_type": meta["event_type"], "event_payload": meta.get("event_payload", {})}

    def _emit(self, event: JSON) -> None:
        self.events(event)

    # -------------------------------------------------------------- operations the emulator reuses

    def post(self, msg: Message) -> Message:
        """Store a message and announce it (message event; app_mention if the bot is named)."""
        self.ws.add_message(msg)
        self._emit(payloads.message_event(self.ws, msg))
        if f"<@{self.ws.bot_user_id}>" in msg.text and msg.user != self.ws.bot_user_id:
            self._emit(payloads.app_mention_event(self.ws, msg))
        return msg

    def bot_message(
        self,
        ch: Channel,
        text: str,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> Message:
        if thread_ts:
            parent = ch.messages.get(thread_ts)
            # A reply's ts threads under its parent; an unknown ts posts to the channel (as Slack).
            thread_ts = (parent.thread_ts or parent.ts) if parent is not None else None
        return Message(
            channel=ch.id,
            ts=self.ws.clock.next(),
            user=self.ws.bot_user_id,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            bot_id=self.ws.bot_id,
            app_id=self.ws.app_id,
            team=self.ws.team_id,
            **extra,
        )

    def replace(
        self,
        msg: Message,
        text: str | None,
        blocks: list[JSON] | None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
        edited: bool = True,
    ) -> None:
        before = self.ws.message_dict(msg)
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks
        if attachments is not None:
            msg.attachments = attachments
        if metadata is not None:
            msg.metadata = metadata
        event_ts = self.ws.clock.next()
        if edited:
            msg.edited = {"user": msg.user, "ts": event_ts}
        self._emit(payloads.message_changed_event(self.ws, before, msg, event_ts))

    def delete(self, msg: Message) -> None:
        before = self.ws.message_dict(msg)
        self.ws.remove_message(msg)
        self._emit(
            payloads.message_deleted_event(self.ws, before, msg.channel, self.ws.clock.next())
        )

    # ------------------------------------------------------------------ auth

    def api_test(self, args: Args) -> JSON:
        return {"args": {k: v for k, v in args.values.items() if k != "token"}}

    def auth_test(self, args: Args) -> JSON:
        ws = self.ws
        return {
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.users[ws.bot_user_id].name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }
