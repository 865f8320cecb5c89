"""chat.*, reactions.* and response_url: messages the app posts, edits and answers with."""

from __future__ import annotations

import re

from .. import payloads
from ..records import JSON, Ephemeral, Message, ResponseUrl
from .args import ApiError, Args
from .base import MethodsBase

EMOJI_NAME = re.compile(r"^[a-z0-9_+\-']{1,100}$")


class ChatMethods(MethodsBase):
    def chat_post_message(self, args: Args) -> JSON:
        ch = self._post_target(args.opt("channel"))
        text, blocks, attachments = self._content(args)
        msg = self.bot_message(
            ch,
            text or "",
            blocks,
            thread_ts=args.opt("thread_ts"),
            attachments=attachments,
            metadata=self._metadata(args),
            reply_broadcast=args.flag("reply_broadcast"),
        )
        self.post(msg)
        return {"channel": ch.id, "ts": msg.ts, "message": self.ws.message_dict(msg)}

    def chat_update(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        ts = args.opt("ts")
        msg = ch.messages.get(ts or "")
        if msg is None or msg.subtype == "tombstone":
            raise ApiError("message_not_found")
        if msg.user != self.ws.bot_user_id:
            raise ApiError("cant_update_message")
        text, blocks, attachments = self._content(args, require=False)
        if (
            text is None
            and blocks is None
            and attachments is None
            and args.opt("metadata") is None
            and "metadata" not in args.values
        ):
            raise ApiError("no_text")
        self.replace(msg, text, blocks, attachments, self._metadata(args))
        return {
            "channel": ch.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": self.ws.message_dict(msg),
        }

    def chat_delete(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        msg = ch.messages.get(args.opt("ts") or "")
        if msg is None or msg.subtype == "tombstone":
            raise ApiError("message_not_found")
        if msg.user != self.ws.bot_user_id:
            raise ApiError("cant_delete_message")
        self.delete(msg)
        return {"channel": ch.id, "ts": msg.ts}

    def chat_post_ephemeral(self, args: Args) -> JSON:
        ch = self._post_target(args.opt("channel"))
        user_ref = args.req("user", error="user_not_found")
        user = self.ws.find_user(user_ref)
        if user is None:
            raise ApiError("user_not_found")
        if user.id not in ch.members:
            raise ApiError("user_not_in_channel")
        text, blocks, _ = self._content(args)
        ts = self.ws.clock.next()
        self.ws.ephemerals.append(
            Ephemeral(
                user=user.id,
                channel=ch.id,
                ts=ts,
                text=text or "",
                blocks=blocks,
                thread_ts=args.opt("thread_ts"),
            )
        )
        return {"message_ts": ts}

    def chat_get_permalink(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        msg = ch.messages.get(args.opt("message_ts") or "")
        if msg is None:
            raise ApiError("message_not_found")
        return {"channel": ch.id, "permalink": self.ws.permalink(msg)}

    def reactions_add(self, args: Args) -> JSON:
        name = (args.opt("name") or "").strip(":")
        ch = self._readable_channel(args.opt("channel"))
        ts = args.opt("timestamp")
        if not ts:
            raise ApiError("no_item_specified")
        if not EMOJI_NAME.match(name):
            raise ApiError("invalid_name")
        msg = ch.messages.get(ts)
        if msg is None:
            raise ApiError("message_not_found")
        self.react(msg, self.ws.bot_user_id, name)
        return {}

    def react(self, msg: Message, user: str, name: str) -> None:
        users = msg.reactions.setdefault(name, [])
        if user in users:
            raise ApiError("already_reacted")
        if len(msg.reactions) > 50 and len(users) == 0:
            raise ApiError("too_many_emoji")
        users.append(user)
        self._emit(payloads.reaction_added_event(self.ws, user, name, msg, self.ws.clock.next()))

    def reactions_get(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        msg = ch.messages.get(args.opt("timestamp") or "")
        if msg is None:
            raise ApiError("message_not_found")
        return {"type": "message", "channel": ch.id, "message": self.ws.message_dict(msg)}

    def respond(self, ru: ResponseUrl, body: JSON, source: str = "response_url") -> None:
        """Apply a message sent to a response_url (or returned in a command's ack body)."""
        ws = self.ws
        original: Message | None = None
        original_eph: Ephemeral | None = None
        if ru.message_ts:
            if ru.is_ephemeral:
                original_eph = next(
                    (
                        e
                        for e in ws.ephemerals
                        if e.ts == ru.message_ts and e.user == ru.user and not e.deleted
                    ),
                    None,
                )
            else:
                original = ws.find_message(ru.channel, ru.message_ts)
        if Args(body).flag("delete_original"):
            if original_eph is not None:
                original_eph.deleted = True
            elif original is not None:
                self.delete(original)
            else:
                raise ApiError("message_not_found")
            return
        text, blocks, attachments = self._content(Args(body))
        thread_ts = Args(body).opt("thread_ts") or ru.thread_ts
        if Args(body).flag("replace_original"):
            if original_eph is not None:
                original_eph.text = text or ""
                original_eph.blocks = blocks
            elif original is not None:
                self.replace(original, text or "", blocks, attachments, edited=False)
            else:
                raise ApiError("message_not_found")
            return
        ch = ws.require_channel(ru.channel)
        if body.get("response_type") == "in_channel":
            self.post(
                self.bot_message(
                    ch, text or "", blocks, thread_ts=thread_ts, attachments=attachments
                )
            )
            return
        ws.ephemerals.append(
            Ephemeral(
                user=ru.user,
                channel=ch.id,
                ts=ws.clock.next(),
                text=text or "",
                blocks=blocks,
                thread_ts=thread_ts,
                source=source,
            )
        )
