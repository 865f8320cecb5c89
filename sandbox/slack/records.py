"""The records an emulated workspace holds (users, channels, messages, views, …) and
Slack's message timestamps. Plain dataclasses; nothing here does I/O."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    is_admin: bool = False
    email: str | None = None
    tz: str = "Europe/London"
    bot_id: str | None = None


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    bot_id: str | None = None
    app_id: str | None = None
    edited: JSON | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[JSON] | None = None
    subtype: str | None = None
    replies: list[str] = field(default_factory=list)
    team: str = ""

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    members: list[str] = field(default_factory=list)
    created: int = 0
    creator: str = ""
    topic: str = ""
    purpose: str = ""
    is_archived: bool = False
    is_general: bool = False
    messages: dict[str, Message] = field(default_factory=dict)

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` Slack puts on message events."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "group" if self.is_private else "channel"


@dataclass
class Ephemeral:
    """What one user saw privately (chat.postEphemeral, command replies, response_url)."""

    user: str
    channel: str
    ts: str
    text: str
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    deleted: bool = False

    def to_dict(self) -> JSON:
        out: JSON = {
            "type": "message",
            "user": self.user,
            "channel": self.channel,
            "ts": self.ts,
            "text": self.text,
            "source": self.source,
        }
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        return out


@dataclass
class View:
    id: str
    type: str
    user: str
    blocks: list[JSON]
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    title: JSON | None = None
    submit: JSON | None = None
    close: JSON | None = None
    notify_on_close: bool = False
    clear_on_close: bool = False
    hash: str = ""
    root_view_id: str | None = None
    previous_view_id: str | None = None
    state: JSON = field(default_factory=lambda: {"values": {}})
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    id: str
    user: str
    channel: str
    issued_at: float
    message_ts: str | None = None
    is_ephemeral: bool = False
    thread_ts: str | None = None
    uses: int = 0


@dataclass
class UploadedFile:
    id: str
    name: str
    length: int
    title: str = ""
    content: bytes | None = None
    user: str = ""
    created: int = 0
    completed: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass
class UserGroup:
    id: str
    handle: str
    name: str
    users: list[str]
    description: str = ""
    created: int = 0


# --------------------------------------------------------------------------- clocks


class TsClock:
    """Issues Slack message timestamps: wall-clock seconds, strictly increasing.

    Slack's ``ts`` is both a time and a per-channel unique id, so two messages
    posted in the same microsecond must still get distinct, ordered values.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        now = int(time.time() * 1_000_000)
        self._last = max(now, self._last + 1)
        return f"{self._last // 1_000_000}.{self._last % 1_000_000:06d}"


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key for a Slack ts (string comparison breaks on differing lengths)."""
    sec, _, frac = ts.partition(".")
    return int(sec or 0), int(frac.ljust(6, "0")[:6] or 0)
