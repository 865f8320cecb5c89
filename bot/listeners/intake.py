"""Intake: messages in watched channels, @mentions, emoji reactions and the message shortcut.

Each starts the matching workflow in one transaction, threaded under the
person's own message. What never starts a run: the bot's own posts (Bolt drops
them), other bots, edits and other message subtypes, thread replies (unless the
trigger asks for them). A retried delivery is deduplicated twice over: by
Slack's ``event_id`` and by the message itself, so the same message starts a
workflow once however Slack delivers it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.deps import BotDeps
from bot.request_text import capped
from workflows.language.triggers import (
    MentionTrigger,
    MessageTrigger,
    ReactionTrigger,
    ShortcutTrigger,
)
from workflows.language.workflow import Workflow
from workflows.ports import CHAT_WORKSPACE, ChatError
from workflows.runs import StartRequest, record_refusal, start_run


class Intake:
    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps
        self._team_channels: dict[tuple[str | None, str], str | None] = {}

    async def on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") or event.get("bot_id"):
            return  # edits, joins, bot posts: not requests
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        reply = bool(event.get("thread_ts")) and event.get("thread_ts") != ts
        text = str(event.get("text", ""))
        for workflow, trigger in self._triggers(MessageTrigger):
            spec = trigger.message
            if not await self._channel_matches(spec.channel, channel) or (
                reply and not spec.threads
            ):
                continue
            if not spec.matches(text):
                continue
            await self._start(
                workflow,
                "message",
                event,
                body,
                text=text,
                ts=ts,
                thread=str(event.get("thread_ts") or ts),
            )

    async def on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        ts = str(event.get("ts", ""))
        text = re.sub(r"<@[A-Z0-9]+>\s*", "", str(event.get("text", ""))).strip()
        for workflow, _trigger in self._triggers(MentionTrigger):
            await self._start(
                workflow,
                "mention",
                event,
                body,
                text=text,
                ts=ts,
                thread=str(event.get("thread_ts") or ts),
            )
            return  # one workflow answers a mention: the first that listens

    async def on_reaction(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
        for workflow, trigger in self._triggers(ReactionTrigger):
            spec = trigger.reaction
            if event.get("reaction") != spec.emoji:
                continue
            if spec.channel and not await self._channel_matches(spec.channel, channel):
                continue
            # The reaction carries no text: the engine reads the message before the first step.
            await self._start(
                workflow,
                "reaction",
                {**event, "channel": channel},
                body,
                text=None,
                ts=ts,
                thread=ts,
            )

    async def on_shortcut(self, ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await ack()
        message = shortcut.get("message") or {}
        event = {
            "channel": (shortcut.get("channel") or {}).get("id"),
            "user": (shortcut.get("user") or {}).get("id"),
        }
        ts = str(message.get("ts", ""))
        for workflow, _trigger in self._triggers(ShortcutTrigger):
            await self._start(
                workflow,
                "shortcut",
                event,
                shortcut,
                text=str(message.get("text", "")),
                ts=ts,
                thread=str(message.get("thread_ts") or ts),
            )
            return

    def _triggers(self, kind: type[Any]) -> Iterator[tuple[Workflow, Any]]:
        for workflow in self.deps.workflows.values():
            for trigger in workflow.triggers:
                if isinstance(trigger, kind):
                    yield workflow, trigger

    async def _channel_matches(self, wanted: str, channel_id: str) -> bool:
        if not wanted.startswith("#"):
            return wanted == channel_id
        if self.deps.channel_ids.get(wanted[1:]) == channel_id:
            return True
        return await self._in_this_workspace(wanted) == channel_id

    async def _in_this_workspace(self, wanted: str) -> str | None:
        """Several workspaces: the request's workspace's ``#name``, looked up once each."""
        workspace, resolve = CHAT_WORKSPACE.get(), self.deps.channel_id_of
        if workspace is None or resolve is None:
            return None
        key = (workspace.team_id, wanted)
        if key not in self._team_channels:
            try:
                self._team_channels[key] = await resolve(wanted)
            except ChatError:  # no such channel there: that workspace's messages never match
                self._team_channels[key] = None
        return self._team_channels[key]

    async def _start(
        self,
        workflow: Workflow,
        source: str,
        event: dict[str, Any],
        body: dict[str, Any],
        *,
        text: str | None,
        ts: str,
        thread: str,
    ) -> None:
        channel = str(event.get("channel", ""))
        extra: dict[str, Any] = {"message_ts": ts}
        if text is None:
            extra["fetch_text"] = True
        request = StartRequest(
            workflow=workflow,
            source=source,
            # A channel message is not refused (no one to tell); it is stored cut.
            text=capped(text or ""),
            user_id=event.get("user"),
            channel_id=channel,
            team_id=body.get("team_id") or (body.get("team") or {}).get("id"),
            thread_ts=thread,
            input=extra,
            # One run per (workflow, message): covers Slack's retries (same event_id) and
            # two deliveries of one message (e.g. a message event and a shortcut).
            dedupe_key=f"{workflow.name}:{source}:{channel}:{ts}",
            trigger_id=body.get("trigger_id"),
        )
        starters = self.deps.starters
        refused = starters.check(workflow, request.user_id, channel) if starters else None
        if refused is not None:
            # Not theirs to start: audited, but a message in a channel gets no reply for it.
            now = self.deps.clock.now()
            await record_refusal(self.deps.store, request, refused.rule, refused.allowed, now)
            return
        await start_run(self.deps.store, request, self.deps.clock.now())
        self.deps.wakeup.set()
