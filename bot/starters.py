"""Who may start a workflow (``allowed_starters``) and where (``in``).

``allowed_starters`` names people: user IDs, ``@group`` members and ``#channel``
members — a member of the channel may start the workflow wherever they type, and
typing in the channel does not make anyone a member. ``in`` names places: a run
may start only from those channels. Empty lists allow anyone / anywhere.

The check runs on the ack path, so it reads only a cache: group and channel
memberships and channel IDs are resolved at start-up and refreshed every minute
in the background (a new channel member waits up to a minute).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.refreshing import Refreshing
from workflows.language.workflow import Workflow
from workflows.ports import Chat, ChatError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why a start was refused: the rule (``allowed_starters`` | ``in``) and what it allows."""

    rule: str
    allowed: list[str]
    message: str


class StarterPolicy(Refreshing):
    task_name = "starter-policy"

    def __init__(self, workflows: Mapping[str, Workflow], chat: Chat | None) -> None:
        self._workflows = workflows
        self._chat = chat
        self._groups: dict[str, frozenset[str]] = {}
        self._members: dict[str, frozenset[str]] = {}
        self._channels: dict[str, str] = {}

    def check(self, workflow: Workflow, user: str | None, channel: str | None) -> Refusal | None:
        """None if ``user`` may start ``workflow`` from ``channel``; else why not."""
        if workflow.in_channels and not any(
            self._is_channel(entry, channel) for entry in workflow.in_channels
        ):
            places = ", ".join(workflow.in_channels)
            return Refusal(
                "in", list(workflow.in_channels), f"*{_title(workflow)}* starts only in {places}."
            )
        if workflow.allowed_starters and not any(
            self._is_starter(entry, user) for entry in workflow.allowed_starters
        ):
            who = ", ".join(workflow.allowed_starters)
            return Refusal(
                "allowed_starters",
                list(workflow.allowed_starters),
                f"You can't start *{_title(workflow)}*: it is open to {who}.",
            )
        return None

    def allows(self, workflow: Workflow, user: str | None, channel: str | None) -> bool:
        return self.check(workflow, user, channel) is None

    def _is_starter(self, entry: str, user: str | None) -> bool:
        if user is None:
            return False
        if entry.startswith("@"):
            return user in self._groups.get(entry[1:], frozenset())
        if entry.startswith("#"):
            return user in self._members.get(entry[1:], frozenset())
        return entry == user

    def _is_channel(self, entry: str, channel: str | None) -> bool:
        if not channel:
            return False
        if entry.startswith("#"):
            return self._channels.get(entry[1:]) == channel
        return entry == channel

    async def refresh(self) -> None:
        if self._chat is None:
            return
        starters = {e for wf in self._workflows.values() for e in wf.allowed_starters}
        places = {e for wf in self._workflows.values() for e in wf.in_channels}
        for entry in sorted(starters | places):
            try:
                await self._refresh_entry(self._chat, entry, entry in starters)
            except ChatError as exc:
                # Keep the last known membership: a Slack hiccup must not lock people out.
                log.warning("starter rule %s not refreshed: %s", entry, exc)

    async def _refresh_entry(self, chat: Chat, entry: str, members: bool) -> None:
        if entry.startswith("@"):
            self._groups[entry[1:]] = frozenset(await chat.usergroup_members(entry[1:]))
        elif entry.startswith("#"):
            self._channels[entry[1:]] = await chat.resolve_channel(entry)
            if members:
                self._members[entry[1:]] = frozenset(await chat.channel_members(entry))


def _title(workflow: Workflow) -> str:
    return workflow.title or workflow.name
