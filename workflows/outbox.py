"""The only door to chat for a run's output: messages and files, each keyed by
(run, step, purpose) and delivered at most once.

The first time a key is sent it is posted and its ``ts`` recorded; afterwards the
same key updates that message. A file (``upload``) is recorded the same way once
chat accepted it, so a re-executed step does not share it again. The gap between
Slack accepting a post and us recording its ``ts`` (a crash there) is closed by
the key travelling in the message's metadata: a re-executed job (attempt > 1)
with no record asks chat for a message carrying its key before posting. (Files
carry no metadata: a crash between an upload and its record shares it again.)

What goes first, and what a newer state of the same key replaces before it was
sent, is ``workflows/chat_lanes.py``'s: ``send`` waits for its state to land,
``send_later`` (run cards) does not.

Every message also carries the mentions the run's requester typed
(``request_mentions``), so the renderer can escape them wherever a summary quotes
request text: echoing someone's words must not ping the people they named. They are
read from everything the run was given: the request's text and every string of its
``input`` (a webhook's body, a form's fields, a reacted message's text once read).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.chat_lanes import CARD, HUMAN, Deliver, Lanes, Priority
from workflows.group_commit import GroupCommit
from workflows.ports import Chat, ChatFile, ChatMessage, Clock, MessageRef
from workflows.store import Store
from workflows.tables import OutboundMessageRow, RequestRow, RunRow

REQUEST_MENTIONS = "request_mentions"
"""The data key under which a message carries the mentions typed in its run's request."""
_TYPED_MENTION = re.compile(r"<([@#!][^<>|\s]{1,80})")
_CACHED_RUNS = 4096
UPDATES = ("update", "")
"""``chat.update`` is limited per workspace: one lane for all of them."""


def typed_mentions(text: str) -> list[str]:
    """``@U…``, ``#C…``, ``!here``, ``!subteam^S…``: every ``<…>`` mention target in ``text``."""
    return sorted(set(_TYPED_MENTION.findall(text)))


def _strings(value: Any) -> list[str]:
    """Every string in a JSON-like value (keys too: a webhook chooses them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for key, item in value.items() for s in (*_strings(key), *_strings(item))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


class Outbox:
    def __init__(self, store: Store, chat: Chat, clock: Clock) -> None:
        self._store = store
        self._chat = chat
        self._clock = clock
        # A run's request and input are written once (a reaction's text is ``learn``t when
        # read): their mentions are read once per run.
        self._mentions: dict[str, list[str]] = {}
        self._learned: dict[str, list[str]] = {}
        self.lanes = Lanes()

    async def send(
        self,
        run_id: str,
        step_id: str,
        purpose: str,
        channel: str,
        message: ChatMessage,
        *,
        thread_ts: str | None = None,
        attempt: int = 1,
        priority: Priority = HUMAN,
    ) -> MessageRef:
        """Post the key's message, or update it once posted; returns once this state landed."""
        key = f"{run_id}/{step_id}/{purpose}"
        deliver = self._delivery(key, channel, message, thread_ts, attempt)
        return await self.lanes.deliver(key, deliver, priority)

    async def send_later(
        self,
        run_id: str,
        step_id: str,
        purpose: str,
        channel: str,
        message: ChatMessage,
        *,
        thread_ts: str | None = None,
        priority: Priority = CARD,
    ) -> None:
        """Like ``send``, in the background (run-card priority unless told): a newer state of
        the key sent before this one went out replaces it (``workflows/chat_lanes.py``)."""
        key = f"{run_id}/{step_id}/{purpose}"
        deliver = self._delivery(key, channel, message, thread_ts, 1)
        await self.lanes.later(key, deliver, priority)

    def _delivery(
        self, key: str, channel: str, message: ChatMessage, thread_ts: str | None, attempt: int
    ) -> Deliver:
        async def deliver(enter: Callable[[tuple[str, str]], Awaitable[None]]) -> MessageRef:
            return await self._deliver(key, channel, message, thread_ts, attempt, enter)

        return deliver

    async def _deliver(
        self,
        key: str,
        channel: str,
        message: ChatMessage,
        thread_ts: str | None,
        attempt: int,
        enter: Callable[[tuple[str, str]], Awaitable[None]],
    ) -> MessageRef:
        run_id, step_id, purpose = key.split("/", 2)
        async with self._store.read() as session:
            mentions = await self._request_mentions(session, run_id)
            data = message.data | {REQUEST_MENTIONS: mentions} if mentions else message.data
            message = ChatMessage(message.template, data, key)
            row = await _recorded(session, run_id, step_id, purpose)
        if row is not None:
            ref = MessageRef(row.channel_id, row.ts)
            await enter(UPDATES)
            await self._chat.update(ref, message)
            return ref
        channel_id = await self._channel_id(channel)
        found = None
        if attempt > 1:
            found = await self._chat.find(channel_id, key, thread_ts=thread_ts)
        if found is not None:
            await enter(UPDATES)
            await self._chat.update(found, message)
            ref = found
        else:
            await enter(("post", channel_id))
            ref = await self._chat.post(channel_id, message, thread_ts=thread_ts)
        await self._record(run_id, step_id, purpose, ref)
        return ref

    async def recorded(self, run_id: str, step_id: str, purpose: str) -> MessageRef | None:
        """Where the message under this key went, if it was sent."""
        async with self._store.read() as session:
            row = await _recorded(session, run_id, step_id, purpose)
        return MessageRef(row.channel_id, row.ts) if row is not None else None

    async def upload(
        self,
        run_id: str,
        step_id: str,
        purpose: str,
        channel: str,
        file: ChatFile,
        *,
        thread_ts: str | None = None,
    ) -> None:
        """Share ``file`` once per key; a key already recorded is not uploaded again."""
        async with self._store.read() as session:
            if await _recorded(session, run_id, step_id, purpose) is not None:
                return
        channel_id = await self._channel_id(channel)
        await self._chat.upload(channel_id, file, thread_ts=thread_ts)
        # A file has no ts of its own to update later: the thread (or channel) it went to.
        await self._record(run_id, step_id, purpose, MessageRef(channel_id, thread_ts or ""))

    async def _request_mentions(self, session: AsyncSession, run_id: str) -> list[str]:
        if run_id not in self._mentions:
            if len(self._mentions) >= _CACHED_RUNS:
                self._mentions.clear()
            text = await session.scalar(select(RequestRow.text).where(RequestRow.id == run_id))
            context = await session.scalar(select(RunRow.context).where(RunRow.id == run_id))
            given = _strings((context or {}).get("input"))
            self._mentions[run_id] = typed_mentions("\n".join([text or "", *given]))
        learned = self._learned.get(run_id)
        return sorted({*self._mentions[run_id], *learned}) if learned else self._mentions[run_id]

    def learn(self, run_id: str, text: str) -> None:
        """Input read after the run started (a reacted message): its mentions are typed too.

        Kept apart until the run's context with it is committed (another process reads it
        from there)."""
        if len(self._learned) >= _CACHED_RUNS:
            self._learned.clear()
        self._learned[run_id] = typed_mentions(text)

    async def _channel_id(self, channel: str) -> str:
        if channel.startswith("@"):
            return await self._chat.open_dm(channel[1:])
        return await self._chat.resolve_channel(channel)

    async def _record(self, run_id: str, step_id: str, purpose: str, ref: MessageRef) -> None:
        # Messages recorded at the same moment (other steps, other runs) share one commit.
        records = self._store.shared("outbox", lambda: GroupCommit(self._store, _insert))
        columns = {
            "run_id": run_id,
            "step_id": step_id,
            "purpose": purpose,
            "channel_id": ref.channel,
            "ts": ref.ts,
            "created_at": self._clock.now(),
        }
        try:
            await records.submit(columns)
        except IntegrityError:
            # A parallel execution of the same job recorded it first: same message either way.
            return


async def _recorded(
    session: AsyncSession, run_id: str, step_id: str, purpose: str
) -> OutboundMessageRow | None:
    row: OutboundMessageRow | None = await session.scalar(
        select(OutboundMessageRow).where(
            OutboundMessageRow.run_id == run_id,
            OutboundMessageRow.step_id == step_id,
            OutboundMessageRow.purpose == purpose,
        )
    )
    return row


async def _insert(session: AsyncSession, records: Sequence[dict[str, Any]]) -> list[None]:
    session.add_all([OutboundMessageRow(**columns) for columns in records])
    await session.flush()
    return [None] * len(records)
