"""Time spent waiting on chat is not a step's time: its ``timeout`` stops while chat works.

A step's ``timeout`` bounds the step's own work (a connector call, a query, a model).
Waiting for Slack is not that work: the per-channel pacer, slack_sdk's in-process
Retry-After and 5xx retries and the call itself are bounded by the chat client (its
call timeout and retry counts), and a chat failure that outlasts them is a retryable
``ChatError`` with the engine's durable chat budget. Counting those waits against the
step made a burst in one channel fail runs with a plain timeout, which has no chat
budget, and a timeout that fired mid-post cancelled a post Slack may already have
accepted. So the step's deadline is paused for as long as any chat call of the step is
in flight and resumed with the time it had left; a timeout can no longer land inside a
chat call. The same holds for a whole delivery through the outbox (its lookup and its
record of the ``ts`` queue behind every other step's writes when a burst is in flight).

The deadline travels in a context variable set around the step executor; tasks the
step spawns inherit it. Outside a step (the root message, result notes) there is none
and ``ChatTimeExcluded`` only delegates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar

from workflows.ports import Chat, ChatError, ChatFile, ChatMessage, HomePublisher, MessageRef


class ChatRateLimited(ChatError):
    """Chat said to come back in ``retry_after`` seconds: longer than worth sleeping through
    in-process, so the step retries durably, due no sooner than that."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


class StepDeadline:
    """A step's ``asyncio.timeout`` that can be paused while chat calls are in flight."""

    def __init__(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout
        self._in_chat = 0
        self._left: float | None = None
        self.active = True

    def pause(self) -> None:
        self._in_chat += 1
        if self._in_chat == 1 and self._can_change():
            when = self._timeout.when()
            self._left = None if when is None else max(0.0, when - _now())
            self._timeout.reschedule(None)

    def resume(self) -> None:
        self._in_chat -= 1
        if self._in_chat == 0 and self._can_change() and self._left is not None:
            self._timeout.reschedule(_now() + self._left)
            self._left = None

    def _can_change(self) -> bool:
        # After the step returned, or once the timeout fired, the deadline is settled.
        return self.active and not self._timeout.expired()


_current: ContextVar[StepDeadline | None] = ContextVar("step_deadline", default=None)


@contextlib.asynccontextmanager
async def step_deadline(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)`` for a step's own work; its chat calls do not count."""
    async with asyncio.timeout(seconds) as timeout:
        deadline = StepDeadline(timeout)
        token = _current.set(deadline)
        try:
            yield
        finally:
            deadline.active = False
            _current.reset(token)


@contextlib.contextmanager
def chat_time() -> Iterator[None]:
    """Pauses the current step's deadline (if any) while a chat call or delivery runs."""
    deadline = _current.get()
    if deadline is None:
        yield
        return
    deadline.pause()
    try:
        yield
    finally:
        deadline.resume()


class ChatTimeExcluded:
    """The engine's ``Chat``: every call pauses the calling step's deadline while it runs."""

    def __init__(self, chat: Chat) -> None:
        self._chat = chat

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        with chat_time():
            return await self._chat.post(channel, message, thread_ts=thread_ts)

    async def update(self, ref: MessageRef, message: ChatMessage) -> None:
        with chat_time():
            await self._chat.update(ref, message)

    async def find(
        self, channel: str, key: str, *, thread_ts: str | None = None
    ) -> MessageRef | None:
        with chat_time():
            return await self._chat.find(channel, key, thread_ts=thread_ts)

    async def resolve_channel(self, name_or_id: str) -> str:
        with chat_time():
            return await self._chat.resolve_channel(name_or_id)

    async def open_dm(self, user_id: str) -> str:
        with chat_time():
            return await self._chat.open_dm(user_id)

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        with chat_time():
            return await self._chat.usergroup_members(handle_or_id)

    async def channel_members(self, name_or_id: str) -> list[str]:
        with chat_time():
            return await self._chat.channel_members(name_or_id)

    async def usergroup_id(self, handle: str) -> str | None:
        with chat_time():
            return await self._chat.usergroup_id(handle)

    async def user_by_email(self, email: str) -> str | None:
        with chat_time():
            return await self._chat.user_by_email(email)

    async def message_text(self, channel: str, ts: str) -> str:
        with chat_time():
            return await self._chat.message_text(channel, ts)

    async def upload(self, channel: str, file: ChatFile, *, thread_ts: str | None = None) -> None:
        with chat_time():
            await self._chat.upload(channel, file, thread_ts=thread_ts)

    async def publish_home(self, user_id: str, view: ChatMessage) -> None:
        if isinstance(self._chat, HomePublisher):  # a chat without a Home has nothing to do
            with chat_time():
                await self._chat.publish_home(user_id, view)


def _now() -> float:
    return asyncio.get_running_loop().time()
