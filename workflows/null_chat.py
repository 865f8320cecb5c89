"""The chat of a process with no Slack: nothing is sent, and it says so.

``bot/runtime.py`` passes it when no bot token is configured (a worker for
webhook-only workflows, the benchmarks, the engine tests). It replaces the old
``Chat | None``: the engine and the steps never ask whether chat exists. Every call
raises ``ChatDisabled`` (a non-retryable ``ChatError``), so a step that needs chat
fails with one clear line in its run, while the run's optional presence in Slack
(root message, notes: ``workflows/presence.py``) is skipped. The first refusal is
logged as a warning, the rest are counted (``refused``) and logged at debug.
"""

from __future__ import annotations

import logging

from workflows.ports import ChatError, ChatFile, ChatMessage, MessageRef

log = logging.getLogger(__name__)


class ChatDisabled(ChatError):
    """This process has no chat; trying again cannot help."""

    def __init__(self) -> None:
        super().__init__("no chat is configured", retryable=False)


class NullChat:
    """A ``Chat`` that refuses every call, loudly once."""

    def __init__(self) -> None:
        self.refused = 0

    def _refuse(self, call: str) -> ChatDisabled:
        self.refused += 1
        level = logging.WARNING if self.refused == 1 else logging.DEBUG
        log.log(level, "chat is not configured: %s not sent", call, extra={"refused": self.refused})
        return ChatDisabled()

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        raise self._refuse(f"message {message.template}")

    async def update(self, ref: MessageRef, message: ChatMessage) -> None:
        raise self._refuse(f"update {message.template}")

    async def find(
        self, channel: str, key: str, *, thread_ts: str | None = None
    ) -> MessageRef | None:
        raise self._refuse("message lookup")

    async def resolve_channel(self, name_or_id: str) -> str:
        raise self._refuse(f"channel lookup {name_or_id}")

    async def open_dm(self, user_id: str) -> str:
        raise self._refuse("direct message")

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        raise self._refuse(f"members of @{handle_or_id}")

    async def channel_members(self, name_or_id: str) -> list[str]:
        raise self._refuse(f"members of {name_or_id}")

    async def usergroup_id(self, handle: str) -> str | None:
        return None  # nothing is posted anywhere: nothing to mention

    async def user_by_email(self, email: str) -> str | None:
        raise self._refuse("a user by e-mail")

    async def message_text(self, channel: str, ts: str) -> str:
        raise self._refuse("message text")

    async def upload(self, channel: str, file: ChatFile, *, thread_ts: str | None = None) -> None:
        raise self._refuse(f"file {file.filename}")
