"""Who may start a workflow (``allowed_starters``): users, @groups and #channels.

The check runs on the ack path, so it reads only a cache: group memberships and
channel IDs are resolved at start-up and refreshed every minute in the
background. An empty ``allowed_starters`` lets anyone start the workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from workflows.language.workflow import Workflow
from workflows.ports import Chat, ChatError

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0


class StarterPolicy:
    def __init__(self, workflows: Mapping[str, Workflow], chat: Chat | None) -> None:
        self._workflows = workflows
        self._chat = chat
        self._groups: dict[str, frozenset[str]] = {}
        self._channels: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def allows(self, workflow: Workflow, user: str | None, channel: str | None) -> bool:
        if not workflow.allowed_starters:
            return True
        for entry in workflow.allowed_starters:
            if entry.startswith("@") and user in self._groups.get(entry[1:], frozenset()):
                return True
            if entry.startswith("#") and channel and self._channels.get(entry[1:]) == channel:
                return True
            if entry in (user, channel):
                return True
        return False

    def refusal(self, workflow: Workflow) -> str:
        who = ", ".join(workflow.allowed_starters)
        return f"You can't start *{workflow.title or workflow.name}*: it is open to {who}."

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="starter-policy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        if self._chat is None:
            return
        entries = {e for wf in self._workflows.values() for e in wf.allowed_starters}
        for entry in sorted(entries):
            try:
                if entry.startswith("@"):
                    members = await self._chat.usergroup_members(entry[1:])
                    self._groups[entry[1:]] = frozenset(members)
                elif entry.startswith("#"):
                    self._channels[entry[1:]] = await self._chat.resolve_channel(entry)
            except ChatError as exc:
                # Keep the last known membership: a Slack hiccup must not lock people out.
                log.warning("allowed_starters %s not refreshed: %s", entry, exc)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.refresh()
