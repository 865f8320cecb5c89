"""In-memory state of one emulated Slack workspace.

Holds the team, users, bot user, channels and DMs, user groups, messages (with
threads, edits, reactions and metadata), ephemeral messages, views (App Home and
modal stacks), trigger ids, response URLs and uploaded files. The Web API and
the delivery code read and mutate it; nothing here does I/O.

The records it holds are in ``records.py``; it is seeded from
:class:`~.seeds.WorkspaceSeed` (``seeds.py``).
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Iterator

from .records import (
    JSON,
    Channel,
    Ephemeral,
    Message,
    ResponseUrl,
    Trigger,
    TsClock,
    UploadedFile,
    User,
    UserGroup,
    View,
    ts_key,
)
from .seeds import WorkspaceSeed

# JSON is re-exported for page.py, which imports it from here.
__all__ = ["JSON", "Workspace"]

# --------------------------------------------------------------------------- workspace


class Workspace:
    """All state of the emulated workspace, addressed the way the Web API does."""

    def __init__(self, seed: WorkspaceSeed) -> None:
        self.seed = seed
        self.team_id = seed.team_id
        self.team_name = seed.team_name
        self.team_domain = seed.team_domain
        self.app_id = seed.app_id
        self.bot_id = seed.bot_id
        self.bot_user_id = seed.bot_user_id
        self.clock = TsClock()
        self.created = int(time.time())
        self._counters: dict[str, int] = {}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, str] = {}
        self.modal_stacks: dict[str, list[str]] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.files: dict[str, UploadedFile] = {}
        self._load(seed)

    # ------------------------------------------------------------------ ids

    def new_id(self, prefix: str) -> str:
        """Slack-looking ids (upper-case alphanumerics), unique per prefix."""
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}0SB{n:06d}"

    def new_trigger(self, user: str) -> Trigger:
        stamp = f"{int(time.time())}{secrets.randbelow(1000):03d}"
        tid = f"{stamp}.{self.team_id}.{secrets.token_hex(16)}"
        trigger = Trigger(id=tid, user=user, issued_at=time.monotonic())
        self.triggers[tid] = trigger
        return trigger

    def new_response_url(
        self,
        user: str,
        channel: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
        thread_ts: str | None = None,
    ) -> ResponseUrl:
        rid = secrets.token_hex(12)
        ru = ResponseUrl(
            id=rid,
            user=user,
            channel=channel,
            issued_at=time.monotonic(),
            message_ts=message_ts,
            is_ephemeral=is_ephemeral,
            thread_ts=thread_ts,
        )
        self.response_urls[rid] = ru
        return ru

    # ------------------------------------------------------------------ seed

    def _load(self, seed: WorkspaceSeed) -> None:
        bot = User(
            id=seed.bot_user_id,
            name=seed.bot_name,
            real_name=seed.bot_display_name,
            is_bot=True,
            bot_id=seed.bot_id,
        )
        self.users[bot.id] = bot
        for us in seed.users:
            uid = us.id or self.new_id("U")
            self.users[uid] = User(
                id=uid,
                name=us.name,
                real_name=us.real_name or us.name.title(),
                is_bot=us.is_bot,
                is_admin=us.is_admin,
                email=us.email or f"{us.name}@{seed.team_domain}.example.com",
                tz=us.tz,
            )
        humans = [u.id for u in self.users.values() if not u.is_bot]
        for i, cs in enumerate(seed.channels):
            cid = cs.id or self.new_id("G" if cs.is_private else "C")
            members = humans[:] if cs.members == "*" else [self.require_user(m) for m in cs.members]
            if cs.bot_member:
                members.append(self.bot_user_id)
            self.channels[cid] = Channel(
                id=cid,
                name=cs.name,
                is_private=cs.is_private,
                members=members,
                created=self.created,
                creator=humans[0] if humans else self.bot_user_id,
                topic=cs.topic,
                purpose=cs.purpose,
                is_general=(i == 0 and not cs.is_private),
            )
        for gs in seed.usergroups:
            gid = gs.id or self.new_id("S")
            self.usergroups[gid] = UserGroup(
                id=gid,
                handle=gs.handle,
                name=gs.name or gs.handle.replace("-", " ").title(),
                users=[self.require_user(u) for u in gs.users],
                description=gs.description,
                created=self.created,
            )

    # ------------------------------------------------------------------ lookups

    def find_user(self, ref: str) -> User | None:
        """A user by id, name or @name."""
        if ref in self.users:
            return self.users[ref]
        name = ref.lstrip("@")
        for user in self.users.values():
            if user.name == name:
                return user
        return None

    def require_user(self, ref: str) -> str:
        user = self.find_user(ref)
        if user is None:
            raise KeyError(f"no such user in the sandbox workspace: {ref!r}")
        return user.id

    def find_channel(self, ref: str) -> Channel | None:
        """A conversation by id, #name or bare name."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if not ch.is_im and ch.name == name:
                return ch
        return None

    def require_channel(self, ref: str) -> Channel:
        ch = self.find_channel(ref)
        if ch is None:
            raise KeyError(f"no such channel in the sandbox workspace: {ref!r}")
        return ch

    def find_usergroup(self, ref: str) -> UserGroup | None:
        if ref in self.usergroups:
            return self.usergroups[ref]
        handle = ref.lstrip("@")
        for g in self.usergroups.values():
            if g.handle == handle:
                return g
        return None

    def im_with(self, user_id: str, create: bool = True) -> Channel | None:
        """The bot's DM channel with a user (Slack keeps exactly one)."""
        for ch in self.channels.values():
            if ch.is_im and ch.im_user == user_id:
                return ch
        if not create:
            return None
        cid = self.new_id("D")
        ch = Channel(
            id=cid,
            name=cid,
            is_im=True,
            is_private=True,
            im_user=user_id,
            members=[user_id, self.bot_user_id],
            created=int(time.time()),
            creator=user_id,
        )
        self.channels[cid] = ch
        return ch

    def find_message(self, channel: str | None, ts: str) -> Message | None:
        if channel is not None:
            ch = self.find_channel(channel)
            return ch.messages.get(ts) if ch else None
        for ch in self.channels.values():
            if ts in ch.messages:
                return ch.messages[ts]
        return None

    def iter_messages(self, channel: Channel) -> Iterator[Message]:
        """All messages of a channel (top level and replies), oldest first."""
        return iter(sorted(channel.messages.values(), key=lambda m: ts_key(m.ts)))

    def top_level(self, channel: Channel) -> list[Message]:
        """What conversations.history shows: roots and broadcast replies, oldest first."""
        return [m for m in self.iter_messages(channel) if not m.is_reply or m.reply_broadcast]

    def thread_of(self, channel: Channel, ts: str) -> list[Message]:
        parent = channel.messages.get(ts)
        if parent is None:
            return []
        replies = [channel.messages[r] for r in parent.replies if r in channel.messages]
        return [parent, *sorted(replies, key=lambda m: ts_key(m.ts))]

    # ------------------------------------------------------------------ mutations

    def add_message(self, msg: Message) -> Message:
        ch = self.require_channel(msg.channel)
        msg.team = msg.team or self.team_id
        ch.messages[msg.ts] = msg
        if msg.is_reply and msg.thread_ts is not None:
            parent = ch.messages.get(msg.thread_ts)
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(msg.ts)
        return msg

    def remove_message(self, msg: Message) -> None:
        ch = self.require_channel(msg.channel)
        if msg.replies:
            # Slack keeps a parent with replies as a tombstone so the thread survives.
            msg.subtype = "tombstone"
            msg.text = "This message was deleted."
            msg.blocks = None
            msg.attachments = None
            msg.metadata = None
            return
        ch.messages.pop(msg.ts, None)
        if msg.is_reply and msg.thread_ts is not None:
            parent = ch.messages.get(msg.thread_ts)
            if parent is not None and msg.ts in parent.replies:
                parent.replies.remove(msg.ts)

    # ------------------------------------------------------------------ rendering

    def message_dict(self, msg: Message, include_metadata: bool = True) -> JSON:
        """A message as conversations.history / chat.postMessage return it."""
        out: JSON = {"type": "message"}
        if msg.subtype:
            out["subtype"] = msg.subtype
        out["text"] = msg.text
        out["user"] = msg.user
        out["ts"] = msg.ts
        out["team"] = msg.team or self.team_id
        if msg.bot_id:
            out["bot_id"] = msg.bot_id
            out["app_id"] = msg.app_id
            out["bot_profile"] = {
                "id": msg.bot_id,
                "app_id": msg.app_id,
                "name": self.seed.bot_display_name,
                "deleted": False,
                "team_id": self.team_id,
            }
        if msg.blocks is not None:
            out["blocks"] = copy.deepcopy(msg.blocks)
        if msg.attachments:
            out["attachments"] = copy.deepcopy(msg.attachments)
        if msg.files:
            out["files"] = copy.deepcopy(msg.files)
            out["upload"] = True
        if msg.edited:
            out["edited"] = dict(msg.edited)
        if msg.thread_ts:
            out["thread_ts"] = msg.thread_ts
        if msg.is_reply:
            parent = self.find_message(msg.channel, msg.thread_ts or "")
            if parent is not None:
                out["parent_user_id"] = parent.user
            if msg.reply_broadcast:
                out["subtype"] = "thread_broadcast"
                out["root"] = {"ts": msg.thread_ts}
        elif msg.replies:
            ch = self.require_channel(msg.channel)
            replies = [ch.messages[r] for r in msg.replies if r in ch.messages]
            users = list(dict.fromkeys(r.user for r in replies))
            out["reply_count"] = len(replies)
            out["reply_users_count"] = len(users)
            out["reply_users"] = users
            out["latest_reply"] = max((r.ts for r in replies), key=ts_key, default=msg.ts)
            out["is_locked"] = False
            out["subscribed"] = False
        if msg.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in msg.reactions.items()
                if users
            ]
        if include_metadata and msg.metadata is not None:
            out["metadata"] = copy.deepcopy(msg.metadata)
        return out

    def user_dict(self, user: User) -> JSON:
        """A user object as users.info / users.list return it."""
        profile: JSON = {
            "real_name": user.real_name,
            "display_name": user.real_name if user.is_bot else user.name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.name,
            "team": self.team_id,
            "image_48": f"https://avatars.example.invalid/{user.id}_48.png",
            "image_72": f"https://avatars.example.invalid/{user.id}_72.png",
        }
        if user.email and not user.is_bot:
            profile["email"] = user.email
        if user.bot_id:
            profile["bot_id"] = user.bot_id
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": False,
            "real_name": user.real_name,
            "tz": user.tz,
            "tz_label": user.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": self.created,
        }

    def channel_dict(self, ch: Channel, include_num_members: bool = False) -> JSON:
        """A conversation object as conversations.info / list return it."""
        if ch.is_im:
            return {
                "id": ch.id,
                "created": ch.created,
                "is_im": True,
                "is_org_shared": False,
                "user": ch.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        out: JSON = {
            "id": ch.id,
            "name": ch.name,
            "is_channel": not ch.is_private and not ch.is_mpim,
            "is_group": ch.is_private and not ch.is_mpim,
            "is_im": False,
            "is_mpim": ch.is_mpim,
            "is_private": ch.is_private,
            "created": ch.created,
            "is_archived": ch.is_archived,
            "is_general": ch.is_general,
            "unlinked": 0,
            "name_normalized": ch.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in ch.members,
            "creator": ch.creator,
            "topic": {"value": ch.topic, "creator": "", "last_set": 0},
            "purpose": {"value": ch.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if include_num_members:
            out["num_members"] = len(ch.members)
        return out

    def view_dict(self, view: View) -> JSON:
        """A view object as views.* return it and interaction payloads carry it."""
        out: JSON = {
            "id": view.id,
            "team_id": self.team_id,
            "type": view.type,
            "blocks": copy.deepcopy(view.blocks),
            "private_metadata": view.private_metadata,
            "callback_id": view.callback_id,
            "state": copy.deepcopy(view.state),
            "hash": view.hash,
            "title": copy.deepcopy(view.title),
            "clear_on_close": view.clear_on_close,
            "notify_on_close": view.notify_on_close,
            "close": copy.deepcopy(view.close),
            "submit": copy.deepcopy(view.submit),
            "previous_view_id": view.previous_view_id,
            "root_view_id": view.root_view_id or view.id,
            "app_id": self.app_id,
            "external_id": view.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return out

    def permalink(self, msg: Message) -> str:
        archive = f"https://{self.team_domain}.slack.com/archives/{msg.channel}"
        base = f"{archive}/p{msg.ts.replace('.', '')}"
        if msg.is_reply:
            return f"{base}?thread_ts={msg.thread_ts}&cid={msg.channel}"
        return base
