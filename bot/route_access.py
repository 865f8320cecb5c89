"""Who may act on a routed request: claim, close, reassign, pick a team, ``/flow route``.

The people it was routed to (the owner user or on-call, the owner channel's members and
the owner's @group), the members of its route step's triage channel, and admins
(``SWITCHBOARD_ADMINS``: user IDs and ``@group`` handles, whose members are admins; the
same check decides who may see, cancel and retry any run, ``bot/listeners/commands.py``).
The check runs on the ack path, so it reads only a cache:
memberships are resolved at start-up and refreshed every minute in the background, as
``bot/starters.py`` does for ``allowed_starters``. Someone removed from a channel may
act for up to a minute more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from bot.refreshing import Refreshing
from workflows.language.steps.route import OwnerDef, RouteSpec, RouteStep
from workflows.language.workflow import Workflow
from workflows.ports import Chat, ChatError
from workflows.tables import AssignmentRow

log = logging.getLogger(__name__)
REFUSAL = (
    "Only the team this request was routed to, the triage channel's members "
    "or an admin can do that."
)


class RouteAccess(Refreshing):
    task_name = "route-access"

    def __init__(
        self, workflows: Mapping[str, Workflow], chat: Chat | None, admins: frozenset[str]
    ) -> None:
        self._workflows = workflows
        self._chat = chat
        self._admins = admins
        self._members: dict[str, frozenset[str]] = {}
        """``#channel``, channel ID or ``@group`` as the definitions name it -> user IDs."""

    def is_admin(self, user: str) -> bool:
        """Named in ``SWITCHBOARD_ADMINS`` by ID, or a member of an ``@group`` named there."""
        if not user:
            return False
        if user in self._admins:
            return True
        groups = (entry for entry in self._admins if entry.startswith("@"))
        return any(user in self._members.get(group, frozenset()) for group in groups)

    def may_act(self, row: AssignmentRow, workflow: str, user: str) -> bool:
        if not user:
            return False
        if self.is_admin(user):
            return True
        if row.owner_kind == "user" and row.owner_id == user:
            return True
        spec = self._spec(workflow, row.step_id)
        if spec is None:
            return False
        names = {spec.triage}
        if row.owner_kind in ("channel", "triage") and row.owner_id:
            names.add(row.owner_id)
        names |= set(_owner_names(spec.owners.get(row.label or row.predicted_label or "")))
        return any(user in self._members.get(name, frozenset()) for name in names)

    def _spec(self, workflow: str, step_id: str) -> RouteSpec | None:
        definition = self._workflows.get(workflow)
        steps = definition.steps if definition else []
        step = next((s for s in steps if s.id == step_id), None)
        return step.route if isinstance(step, RouteStep) else None

    async def refresh(self) -> None:
        if self._chat is None:
            return
        for name in sorted(set(self._names())):
            try:
                if name.startswith("@"):
                    members = await self._chat.usergroup_members(name[1:])
                else:
                    members = await self._chat.channel_members(name)
                self._members[name] = frozenset(members)
            except ChatError as exc:
                # Keep the last known membership: a Slack hiccup must not lock a team out.
                log.warning("routing access for %s not refreshed: %s", name, exc)

    def _names(self) -> Iterator[str]:
        yield from (entry for entry in self._admins if entry.startswith("@"))
        for workflow in self._workflows.values():
            for step in workflow.steps:
                if isinstance(step, RouteStep):
                    yield step.route.triage
                    for owner in step.route.owners.values():
                        yield from _owner_names(owner)


def _owner_names(owner: str | OwnerDef | None) -> Iterator[str]:
    """The channels and groups whose members own a label (users are checked by ID)."""
    if isinstance(owner, str) and not owner.startswith("U"):
        yield owner
    elif isinstance(owner, OwnerDef):
        yield from (name for name in (owner.channel, owner.group) if name)
