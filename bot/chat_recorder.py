"""A chat that keeps every message in memory: what ``switchboard test`` shows of a run.

Messages are rendered by the real renderer (``bot/render.py``) so the text recorded is
the text Slack would get. Every user group and channel has the members given, so the
person who approves in a test is always among the approvers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.render import Renderer, RenderError
from workflows.ports import ChatFile, ChatMessage, MessageRef


@dataclass(frozen=True)
class Recorded:
    channel: str
    thread_ts: str | None
    template: str
    text: str
    ts: str


class ChatRecorder:
    """A ``Chat`` that posts nowhere and remembers everything."""

    def __init__(self, templates_dir: Path | None = None, members: list[str] | None = None):
        self._renderer = Renderer(templates_dir or Path("templates"))
        self.members = list(members or [])
        self.messages: list[Recorded] = []
        self.files: list[tuple[str, str]] = []

    def texts(self) -> list[str]:
        return [message.text for message in self.messages]

    def _record(self, channel: str, message: ChatMessage, thread_ts: str | None, ts: str) -> None:
        try:
            text = self._renderer.render(message.template, message.data).text
        except RenderError as exc:
            text = f"({exc})"
        self.messages.append(Recorded(channel, thread_ts, message.template, text, ts))

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        ts = f"1700000000.{len(self.messages) + 1:06d}"
        self._record(channel, message, thread_ts, ts)
        return MessageRef(channel, ts)

    async def update(self, ref: MessageRef, message: ChatMessage) -> None:
        self._record(ref.channel, message, None, ref.ts)

    async def find(
        self, channel: str, key: str, *, thread_ts: str | None = None
    ) -> MessageRef | None:
        return None  # nothing was ever sent anywhere: nothing to recover

    async def resolve_channel(self, name_or_id: str) -> str:
        return name_or_id

    async def open_dm(self, user_id: str) -> str:
        return f"@{user_id}"

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        return list(self.members)

    async def channel_members(self, name_or_id: str) -> list[str]:
        return list(self.members)

    async def usergroup_id(self, handle: str) -> str | None:
        return None  # no workspace: the card names the group as written

    async def user_by_email(self, email: str) -> str | None:
        return None  # `switchboard test` knows no workspace: on-call lookups give ids

    async def message_text(self, channel: str, ts: str) -> str:
        return next((m.text for m in self.messages if m.ts == ts), "")

    async def upload(self, channel: str, file: ChatFile, *, thread_ts: str | None = None) -> None:
        self.files.append((channel, file.filename))
