"""What the Slack listeners need, built once by the composition root and passed in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot.render import Renderer
from bot.route_access import RouteAccess
from bot.starters import StarterPolicy
from workflows.language.workflow import Workflow
from workflows.ports import Clock
from workflows.store import Store


@dataclass(frozen=True)
class BotDeps:
    store: Store
    workflows: Mapping[str, Workflow]
    renderer: Renderer
    clock: Clock
    wakeup: asyncio.Event
    """Set after enqueueing work, so an in-process worker claims it at once."""
    starters: StarterPolicy | None = None
    """Who may start which workflow (``allowed_starters``), from a cache."""
    channel_ids: dict[str, str] = field(default_factory=dict)
    """``#name`` -> ID for the channels triggers watch; filled at start-up."""
    channel_id_of: Callable[[str], Awaitable[str]] | None = None
    """Several workspaces: ``#name`` -> ID in the request's workspace (names differ per
    workspace, so ``channel_ids``, resolved with no workspace, cannot know them)."""
    route_access: RouteAccess | None = None
    """Who may act on a routed request (owners, triage, admins), from a cache."""
