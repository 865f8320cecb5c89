"""Slack Web API methods over the sandbox workspace.

Each method takes the parsed arguments and returns the success body (without
``ok``) or raises :class:`ApiError` carrying Slack's error code. Changes that
Slack would announce to the app (new messages, edits, deletions, reactions) are
handed to the event sink; the emulator decides whether the app is subscribed.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import payloads
from .blockkit_limits import MESSAGE_TEXT_MAX, Surface, validate_blocks, validate_view
from .state import (
    JSON,
    Channel,
    Ephemeral,
    Message,
    ResponseUrl,
    UploadedFile,
    View,
    Workspace,
    ts_key,
)

EventSink = Callable[[JSON], None]
Handler = Callable[["Args"], JSON]

TRIGGER_TTL_SECONDS = 3.0
MAX_MODAL_STACK = 3
EMOJI_NAME = re.compile(r"^[a-z0-9_+\-']{1,100}$")


class ApiError(Exception):
    """A Web API failure: Slack's error code plus any extra top-level fields."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _messages(errors: list[str]) -> JSON:
    return {"messages": [f"[ERROR] {e}" for e in errors]}


class Args:
    """Method arguments merged from query string, form or JSON body."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def opt(
        self, name: str, required: bool = False, error: str = "invalid_arguments"
    ) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(
                    error,
                    **(
                        {"response_metadata": _messages([f"missing required field: {name}"])}
                        if error == "invalid_arguments"
                        else {}
                    ),
                )
            return None
        return value if isinstance(value, str) else str(value)

    def req(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.opt(name, required=True, error=error)
        assert value is not None
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def num(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None

    def json(self, name: str, error: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            if not value:
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value


def _cursor_page(items: list[Any], args: Args, default_limit: int = 100) -> tuple[list[Any], str]:
    """Slack's cursor pagination: an opaque cursor that encodes the next offset."""
    limit = max(1, min(args.num("limit", default_limit) or default_limit, 1000))
    cursor = args.opt("cursor")
    start = 0
    if cursor:
        try:
            start = int(base64.b64decode(cursor).decode().removeprefix("next:"))
        except ValueError:
            raise ApiError("invalid_cursor") from None
    page = items[start : start + limit]
    nxt = start + limit
    next_cursor = base64.b64encode(f"next:{nxt}".encode()).decode() if nxt < len(items) else ""
    return page, next_cursor


class Methods:
    """The implemented Web API methods, keyed by Slack method name in :attr:`table`."""

    def __init__(
        self, ws: Workspace, events: EventSink, trigger_ttl: float = TRIGGER_TTL_SECONDS
    ) -> None:
        self.ws = ws
        self.events = events
        self.trigger_ttl = trigger_ttl
        self.upload_base = ""
        self.table: dict[str, Handler] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.list": self.conversations_list,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.members": self.conversations_members,
            "conversations.open": self.conversations_open,
            "conversations.join": self.conversations_join,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "reactions.add": self.reactions_add,
            "reactions.get": self.reactions_get,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "files.getUploadURLExternal": self.files_get_upload_url,
            "files.completeUploadExternal": self.files_complete_upload,
        }

    # ------------------------------------------------------------------ helpers

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
                raise ApiError("invalid_blocks", errors=errors, response_metadata=_messages(errors))
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

    def consume_trigger(self, trigger_id: str | None) -> str:
        """Exchange a trigger_id for the user it was issued to (once, within its lifetime)."""
        if not trigger_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages(["missing required field: trigger_id"]),
            )
        trigger = self.ws.triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger.user

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

    # ------------------------------------------------------------------ chat

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

    # ------------------------------------------------------------------ conversations

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
        page, cursor = _cursor_page(out, args)
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
        page, cursor = _cursor_page(msgs, args)
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
        page, cursor = _cursor_page(thread, args, default_limit=1000)
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
        page, cursor = _cursor_page(list(ch.members), args)
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

    # ------------------------------------------------------------------ users and groups

    def users_info(self, args: Args) -> JSON:
        user = self.ws.users.get(args.opt("user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {"user": self.ws.user_dict(user)}

    def users_list(self, args: Args) -> JSON:
        members = [self.ws.user_dict(u) for u in self.ws.users.values()]
        page, cursor = _cursor_page(members, args, default_limit=1000)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    def usergroups_list(self, args: Args) -> JSON:
        include_users = args.flag("include_users")
        include_count = args.flag("include_count")
        out = []
        for g in self.ws.usergroups.values():
            item: JSON = {
                "id": g.id,
                "team_id": self.ws.team_id,
                "is_usergroup": True,
                "is_subteam": True,
                "name": g.name,
                "description": g.description,
                "handle": g.handle,
                "is_external": False,
                "date_create": g.created,
                "date_update": g.created,
                "date_delete": 0,
                "auto_type": None,
                "created_by": self.ws.bot_user_id,
                "updated_by": self.ws.bot_user_id,
                "deleted_by": None,
                "prefs": {"channels": [], "groups": []},
            }
            if include_users:
                item["users"] = list(g.users)
            if include_count:
                item["user_count"] = len(g.users)
            out.append(item)
        return {"usergroups": out}

    def usergroups_users_list(self, args: Args) -> JSON:
        group = self.ws.usergroups.get(args.opt("usergroup") or "")
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    # ------------------------------------------------------------------ reactions

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

    # ------------------------------------------------------------------ views

    def _view_arg(self, args: Args, surface: Surface) -> JSON:
        view = args.json("view", "invalid_arguments")
        if view is None:
            raise ApiError(
                "invalid_arguments", response_metadata=_messages(["missing required field: view"])
            )
        errors = validate_view(view, surface)
        if errors:
            raise ApiError("invalid_arguments", response_metadata=_messages(errors))
        assert isinstance(view, dict)
        return view

    def make_view(
        self,
        spec: JSON,
        user: str,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> View:
        view = View(
            id=view_id or self.ws.new_id("V"),
            type=str(spec.get("type")),
            user=user,
            blocks=self._fill_ids(list(spec.get("blocks") or [])),
            callback_id=str(spec.get("callback_id") or ""),
            private_metadata=str(spec.get("private_metadata") or ""),
            external_id=str(spec.get("external_id") or ""),
            title=spec.get("title"),
            submit=spec.get("submit"),
            close=spec.get("close"),
            notify_on_close=bool(spec.get("notify_on_close", False)),
            clear_on_close=bool(spec.get("clear_on_close", False)),
            hash=f"{int(time.time())}.{secrets.token_hex(4)}",
            root_view_id=root,
            previous_view_id=previous,
        )
        if view.external_id:
            for other in self.ws.views.values():
                if other.external_id == view.external_id and other.id != view.id:
                    raise ApiError("duplicate_external_id")
        self.ws.views[view.id] = view
        return view

    def views_open(self, args: Args) -> JSON:
        spec = self._view_arg(args, "modal")
        user = self.consume_trigger(args.opt("trigger_id"))
        view = self.make_view(spec, user)
        view.root_view_id = view.id
        self.ws.modal_stacks[user] = [view.id]
        return {"view": self.ws.view_dict(view)}

    def views_push(self, args: Args) -> JSON:
        spec = self._view_arg(args, "modal")
        user = self.consume_trigger(args.opt("trigger_id"))
        return {"view": self.ws.view_dict(self.push_view(user, spec))}

    def push_view(self, user: str, spec: JSON) -> View:
        stack = self.ws.modal_stacks.get(user) or []
        if not stack:
            raise ApiError("not_found")
        if len(stack) >= MAX_MODAL_STACK:
            raise ApiError("push_limit_reached")
        view = self.make_view(spec, user, root=stack[0], previous=stack[-1])
        stack.append(view.id)
        return view

    def views_update(self, args: Args) -> JSON:
        view_id, external_id = args.opt("view_id"), args.opt("external_id")
        if not view_id and not external_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages(["view_id or external_id is required"]),
            )
        current = self.ws.views.get(view_id or "")
        if current is None and external_id:
            current = next(
                (v for v in self.ws.views.values() if v.external_id == external_id), None
            )
        if current is None:
            raise ApiError("not_found")
        surface: Surface = "home" if current.type == "home" else "modal"
        spec = self._view_arg(args, surface)
        given_hash = args.opt("hash")
        if given_hash and given_hash != current.hash:
            raise ApiError("hash_conflict")
        return {"view": self.ws.view_dict(self.update_view(current, spec))}

    def update_view(self, current: View, spec: JSON) -> View:
        view = self.make_view(
            spec,
            current.user,
            view_id=current.id,
            root=current.root_view_id,
            previous=current.previous_view_id,
        )
        if not view.external_id:
            view.external_id = current.external_id
        return view

    def views_publish(self, args: Args) -> JSON:
        user_id = args.opt("user_id")
        if not user_id or user_id not in self.ws.users:
            raise ApiError("invalid_arguments", response_metadata=_messages(["invalid user_id"]))
        spec = self._view_arg(args, "home")
        existing = self.ws.views.get(self.ws.home_views.get(user_id, ""))
        given_hash = args.opt("hash")
        if existing is not None and given_hash and given_hash != existing.hash:
            raise ApiError("hash_conflict")
        view = self.make_view(spec, user_id, view_id=existing.id if existing else None)
        view.root_view_id = view.id
        self.ws.home_views[user_id] = view.id
        return {"view": self.ws.view_dict(view)}

    # ------------------------------------------------------------------ files

    def files_get_upload_url(self, args: Args) -> JSON:
        filename = args.opt("filename")
        length = args.num("length", -1)
        if not filename:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages(["missing required field: filename"]),
            )
        if length < 0:
            raise ApiError(
                "invalid_arguments", response_metadata=_messages(["missing required field: length"])
            )
        fid = self.ws.new_id("F")
        self.ws.files[fid] = UploadedFile(
            id=fid, name=filename, length=length, user=self.ws.bot_user_id, created=int(time.time())
        )
        return {"upload_url": f"{self.upload_base}/upload/v1/{fid}", "file_id": fid}

    def file_dict(self, f: UploadedFile) -> JSON:
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "mimetype": "application/octet-stream",
            "filetype": f.name.rsplit(".", 1)[-1] if "." in f.name else "binary",
            "user": f.user,
            "size": len(f.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"https://files.slack.com/files-pri/{self.ws.team_id}-{f.id}/{f.name}",
            "permalink": f"https://{self.ws.team_domain}.slack.com/files/{f.user}/{f.id}/{f.name}",
            "channels": list(f.channels),
        }

    def files_complete_upload(self, args: Args) -> JSON:
        items = args.json("files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise ApiError(
                "invalid_arguments", response_metadata=_messages(["missing required field: files"])
            )
        channel = args.opt("channel_id") or (args.opt("channels") or "").split(",")[0] or None
        ch = self._post_target(channel) if channel else None
        done = []
        for item in items:
            f = self.ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if f is None or f.content is None:
                raise ApiError("file_not_found")
            f.title = str(item.get("title") or f.name)
            f.completed = True
            if ch is not None:
                f.channels.append(ch.id)
            done.append(f)
        if ch is not None:
            msg = self.bot_message(
                ch,
                args.opt("initial_comment") or "",
                thread_ts=args.opt("thread_ts"),
                files=[self.file_dict(f) for f in done],
            )
            self.post(msg)
        return {"files": [{"id": f.id, "title": f.title} for f in done]}

    # ------------------------------------------------------------------ response_url

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
