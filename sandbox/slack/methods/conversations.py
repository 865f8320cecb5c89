"""conversations.*: channels, DMs and their history as the bot may see them."""

from __future__ import annotations

import time

from ..records import JSON, Channel, Message, ts_key
from .args import ApiError, Args, cursor_page
from .base import MethodsBase


class ConversationMethods(MethodsBase):
    def conversations_list(self, args: Args) -> JSON:
        types = set((args.opt("types") or "public_channel").split(","))
        exclude_archived = args.flag("exclude_archived")
        out = []
        for ch in self.ws.channels.values():
            kind = (
                "im"
                if ch.is_im
                else "mpim"
                if ch.is_mpim
                else "private_channel"
                if ch.is_private
                else "public_channel"
            )
            if kind not in types or (exclude_archived and ch.is_archived):
                continue
            if ch.is_private and self.ws.bot_user_id not in ch.members:
                continue
            out.append(self.ws.channel_dict(ch, include_num_members=not ch.is_im))
        page, cursor = cursor_page(out, args)
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def conversations_info(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        return {
            "channel": self.ws.channel_dict(
                ch, include_num_members=args.flag("include_num_members")
            )
        }

    def conversations_history(self, args: Args) -> JSON:
        ch = self._member_channel(args.opt("channel"))
        with_meta = args.flag("include_all_metadata")
        msgs = list(reversed(self.ws.top_level(ch)))
        msgs = self._time_window(msgs, args)
        page, cursor = cursor_page(msgs, args)
        out: JSON = {
            "messages": [self.ws.message_dict(m, include_metadata=with_meta) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if cursor:
            out["response_metadata"] = {"next_cursor": cursor}
        return out

    @staticmethod
    def _time_window(msgs: list[Message], args: Args) -> list[Message]:
        latest, oldest = args.opt("latest"), args.opt("oldest")
        inclusive = args.flag("inclusive")
        if latest:
            lk = ts_key(latest)
            msgs = [m for m in msgs if ts_key(m.ts) < lk or (inclusive and ts_key(m.ts) == lk)]
        if oldest:
            ok = ts_key(oldest)
            msgs = [m for m in msgs if ts_key(m.ts) > ok or (inclusive and ts_key(m.ts) == ok)]
        return msgs

    def conversations_replies(self, args: Args) -> JSON:
        ch = self._member_channel(args.opt("channel"))
        ts = args.opt("ts")
        msg = ch.messages.get(ts or "")
        if msg is None:
            raise ApiError("thread_not_found")
        root = ch.messages.get(msg.thread_ts) if msg.is_reply and msg.thread_ts else msg
        thread = self.ws.thread_of(ch, root.ts) if root is not None else [msg]
        thread = [thread[0], *self._time_window(thread[1:], args)] if thread else thread
        page, cursor = cursor_page(thread, args, default_limit=1000)
        with_meta = args.flag("include_all_metadata")
        out: JSON = {
            "messages": [self.ws.message_dict(m, include_metadata=with_meta) for m in page],
            "has_more": bool(cursor),
        }
        if cursor:
            out["response_metadata"] = {"next_cursor": cursor}
        return out

    def conversations_members(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        page, cursor = cursor_page(list(ch.members), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def conversations_open(self, args: Args) -> JSON:
        channel = args.opt("channel")
        if channel:
            ch = self._readable_channel(channel)
            return {
                "channel": self.ws.channel_dict(ch) if args.flag("return_im") else {"id": ch.id}
            }
        users = [u for u in (args.opt("users") or "").split(",") if u]
        if not users:
            raise ApiError("users_list_not_supplied")
        for u in users:
            if u not in self.ws.users:
                raise ApiError("user_not_found")
        if len(users) > 8:
            raise ApiError("too_many_users")
        if len(users) == 1:
            existing = self.ws.im_with(users[0], create=False)
            im = existing or self.ws.im_with(users[0])
            assert im is not None
            body: JSON = {
                "channel": self.ws.channel_dict(im) if args.flag("return_im") else {"id": im.id}
            }
            if existing is not None:
                body.update({"no_op": True, "already_open": True})
            return body
        members = sorted({*users, self.ws.bot_user_id})
        for ch in self.ws.channels.values():
            if ch.is_mpim and sorted(ch.members) == members:
                return {"channel": self.ws.channel_dict(ch), "no_op": True, "already_open": True}
        cid = self.ws.new_id("G")
        names = "--".join(self.ws.users[m].name for m in members)
        mpim = Channel(
            id=cid,
            name=f"mpdm-{names}-1",
            is_private=True,
            is_mpim=True,
            members=members,
            created=int(time.time()),
            creator=self.ws.bot_user_id,
        )
        self.ws.channels[cid] = mpim
        return {"channel": self.ws.channel_dict(mpim)}

    def conversations_join(self, args: Args) -> JSON:
        ch = self._readable_channel(args.opt("channel"))
        if ch.is_im or ch.is_mpim or ch.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise ApiError("is_archived")
        body: JSON = {"channel": self.ws.channel_dict(ch)}
        if self.ws.bot_user_id in ch.members:
            body["warning"] = "already_in_channel"
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            ch.members.append(self.ws.bot_user_id)
            body["channel"] = self.ws.channel_dict(ch)
        return body
