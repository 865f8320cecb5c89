"""What the engine needs from the outside world, as small interfaces.

``bot/notifier.py`` implements ``Chat`` over the Slack Web API; tests use the
same implementation against the local Slack emulator; a process without Slack
gets ``workflows/null_chat.NullChat``. Only the outbox (``workflows/outbox.py``)
posts, updates or uploads, so every delivery is keyed. The engine hands chat a
*template name and data* — rendering Block Kit is the chat side's job — and a
stable ``key`` so a retried step finds and updates its message instead of
posting a second one.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class MessageRef:
    channel: str
    ts: str


@dataclass(frozen=True)
class ChatMessage:
    """A message to render from ``templates/<template>.json.j2`` with ``data``."""

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """Stable identity (run/step/purpose), carried in message metadata for recovery."""


@dataclass(frozen=True)
class ChatFile:
    """A file to share in a channel or thread (a digest's chart), through the outbox."""

    filename: str
    content: bytes
    title: str


@dataclass(frozen=True)
class ChatWorkspace:
    """The chat workspace (Slack: team, and Enterprise Grid org) some work belongs to."""

    team_id: str | None
    enterprise_id: str | None = None


CHAT_WORKSPACE: ContextVar[ChatWorkspace | None] = ContextVar("chat_workspace", default=None)
"""Whose work the current task does: set by the engine for a run's job (the run's
workspace) and by the bot for a Slack request (the request's). A chat serving several
workspaces posts with this one's token; ``start_run`` gives a run started without a team
this one (a sub-workflow its parent's, a click its workspace's)."""


class ChatError(Exception):
    """Chat refused or failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Chat(Protocol):
    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef: ...

    async def update(self, ref: MessageRef, message: ChatMessage) -> None: ...

    async def find(
        self, channel: str, key: str, *, thread_ts: str | None = None
    ) -> MessageRef | None:
        """A message we posted earlier with this key, if Slack still has it."""
        ...

    async def resolve_channel(self, name_or_id: str) -> str:
        """``#name`` or an ID -> a channel ID."""
        ...

    async def open_dm(self, user_id: str) -> str: ...

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        """User IDs in a user group (``finance-leads`` or an ID), cached briefly."""
        ...

    async def channel_members(self, name_or_id: str) -> list[str]: ...

    async def usergroup_id(self, handle: str) -> str | None:
        """The ID of the user group ``@handle`` (for a ``<!subteam^ID>`` mention), or None."""
        ...

    async def user_by_email(self, email: str) -> str | None:
        """The user ID of the workspace member with this e-mail address, or None."""
        ...

    async def message_text(self, channel: str, ts: str) -> str:
        """The text of an existing message (for runs started by an emoji reaction)."""
        ...

    async def upload(self, channel: str, file: ChatFile, *, thread_ts: str | None = None) -> None:
        """Share a file (a digest's chart) in a channel or thread."""
        ...


@runtime_checkable
class HomePublisher(Protocol):
    """A chat that can publish a person's App Home (``views.publish``); optional, so chats
    without a Home (``NullChat``, test fakes) need not implement it."""

    async def publish_home(self, user_id: str, view: ChatMessage) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
