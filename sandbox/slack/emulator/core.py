"""The emulator's core: its workspace, Web API and deliverer, event routing, and lookups.

Each Slack surface the people in the workspace act on is a subclass of
:class:`EmulatorCore` beside this module; :class:`~sandbox.slack.emulator.SlackEmulator`
combines them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.routing import Route

from .. import payloads
from ..delivery import SLACK_RETRY_DELAYS, Deliverer, DeliveryResult
from ..methods import Methods
from ..oidc import OpenIDProvider
from ..records import JSON, Channel, Message, User
from ..seeds import WorkspaceSeed
from ..socket_mode import SocketModeServer
from ..state import Workspace
from ..web_api import DEFAULT_RATE_LIMITS, WebApi

T = TypeVar("T")


DEFAULT_BOT_EVENTS: tuple[str, ...] = (
    "message.channels",
    "message.groups",
    "message.im",
    "app_mention",
    "reaction_added",
    "app_home_opened",
)
SUBSCRIPTION_OF_CHANNEL_TYPE = {
    "channel": "message.channels",
    "group": "message.groups",
    "im": "message.im",
    "mpim": "message.mpim",
}


class EmulatorCore:
    """The state every surface shares: workspace, Web API, deliverer, background tasks."""

    def __init__(
        self,
        signing_secret: str,
        bot_token: str,
        workspace: WorkspaceSeed | Mapping[str, Any] | None = None,
        request_url: str | None = None,
        *,
        base_url: str | None = None,
        rate_limits: Mapping[str, int] | str | None = DEFAULT_RATE_LIMITS,
        ack_deadline: float = 3.0,
        event_retry_delays: Sequence[float] | None = SLACK_RETRY_DELAYS,
        trigger_ttl: float = 3.0,
        bot_events: Iterable[str] = DEFAULT_BOT_EVENTS,
        app_token: str | None = None,
    ) -> None:
        if workspace is None:
            seed = WorkspaceSeed.demo()
        elif isinstance(workspace, WorkspaceSeed):
            seed = workspace
        else:
            seed = WorkspaceSeed.model_validate(workspace)
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.workspace = Workspace(seed)
        self.bot_events = set(bot_events)
        self._base_url = base_url.rstrip("/") if base_url else None
        self._methods = Methods(self.workspace, self._on_event, trigger_ttl=trigger_ttl)
        self._api = WebApi(self.workspace, self._methods, bot_token, rate_limits)
        self.oidc = OpenIDProvider(self.workspace)  # Sign in with Slack (sandbox/slack/oidc.py)
        self._deliverer = Deliverer(signing_secret, request_url, ack_deadline, event_retry_delays)
        # Socket Mode: once the app (with ``app_token``) opens a link, requests go over it.
        self.socket = SocketModeServer(app_token, self.workspace.app_id)
        self._deliverer.socket = self.socket
        self._tasks: set[asyncio.Task[Any]] = set()
        self._collecting: list[JSON] | None = None
        self._app: Starlette | None = None

    # ------------------------------------------------------------------ wiring

    @property
    def asgi_app(self) -> Starlette:
        """The Starlette app serving /api/{method}, /response/{id} and /upload/v1/{id}."""
        if self._app is None:
            opening = Route(
                "/api/apps.connections.open", self.socket.connections_open, methods=["POST"]
            )
            self._app = Starlette(routes=[opening, *self.oidc.routes, *self._api.routes])
        return self._app

    @property
    def request_url(self) -> str | None:
        """Where Slack sends commands, interactivity and events (the bot's /slack/events)."""
        return self._deliverer.request_url

    @request_url.setter
    def request_url(self, url: str | None) -> None:
        self._deliverer.request_url = url

    @property
    def base_url(self) -> str | None:
        """Public URL of ``asgi_app`` (learned from the first API call when not set)."""
        return self._base_url or self._api.learned_base_url

    @base_url.setter
    def base_url(self, url: str | None) -> None:
        self._base_url = url.rstrip("/") if url else None

    @property
    def trigger_ttl(self) -> float:
        """Seconds a trigger_id stays exchangeable (Slack: 3)."""
        return self._methods.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self._methods.trigger_ttl = seconds

    @property
    def ack_deadline(self) -> float:
        """Seconds Slack waits for the app's HTTP answer (Slack: 3)."""
        return self._deliverer.deadline

    @ack_deadline.setter
    def ack_deadline(self, seconds: float) -> None:
        self._deliverer.deadline = seconds

    @property
    def api_url(self) -> str:
        """The ``base_url`` to give slack_sdk's WebClient (ends with /api/)."""
        return f"{self._require_base()}/api/"

    def _require_base(self) -> str:
        base = self.base_url
        if not base:
            raise RuntimeError("set emulator.base_url to where asgi_app is served")
        return base

    async def aclose(self) -> None:
        """Wait for background deliveries (briefly), then cancel the rest and close HTTP."""
        await self.drain(timeout=1.0, cancel=True)
        await self._deliverer.aclose()
        await self.socket.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0, cancel: bool = False) -> None:  # noqa: ASYNC109
        """Wait until background deliveries (events, retries) are done."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
        if cancel:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ events

    def _subscribed(self, event: JSON) -> bool:
        kind = str(event.get("type"))
        ws = self.workspace
        if kind == "message":
            name = SUBSCRIPTION_OF_CHANNEL_TYPE.get(str(event.get("channel_type")), "")
        else:
            name = kind
        if name not in self.bot_events:
            return False
        channel = event.get("channel") or (event.get("item") or {}).get("channel")
        if kind == "app_home_opened" or not channel:
            return True
        ch = ws.find_channel(str(channel))
        # Bot tokens only hear what happens in conversations the bot is in.
        return ch is not None and ws.bot_user_id in ch.members

    def _on_event(self, event: JSON) -> None:
        if not self._subscribed(event) or not (self.request_url or self.socket.enabled):
            return
        if self._collecting is not None:
            self._collecting.append(event)
            return
        self._spawn(self._deliver_event(event))

    async def _deliver_event(self, event: JSON) -> DeliveryResult:
        return await self._deliverer.send_event(
            payloads.envelope(self.workspace, event), self._spawn
        )

    async def _deliver_collected(self, action: Callable[[], T]) -> tuple[T, list[DeliveryResult]]:
        """Run a state change and deliver the events it causes before returning."""
        self._collecting = []
        try:
            value = action()
            events = self._collecting
        finally:
            self._collecting = None
        results = [await self._deliver_event(e) for e in events]
        return value, results

    # ------------------------------------------------------------------ lookups

    def user(self, ref: str) -> User:
        user = self.workspace.find_user(ref)
        if user is None:
            raise KeyError(f"no such user: {ref!r}")
        return user

    def user_id(self, ref: str) -> str:
        return self.user(ref).id

    def channel(self, ref: str) -> Channel:
        return self.workspace.require_channel(ref)

    def channel_id(self, ref: str) -> str:
        return self.channel(ref).id

    def dm_channel(self, user: str) -> Channel:
        """The user's DM with the app (created on first use, like Slack)."""
        ch = self.workspace.im_with(self.user_id(user))
        assert ch is not None
        return ch

    def _conversation(self, user: User, channel: str | None) -> Channel:
        if (
            channel is None
            or self.workspace.find_user(channel) is self.workspace.users[self.workspace.bot_user_id]
        ):
            return self.dm_channel(user.id)
        return self.channel(channel)

    def _message(self, target: str | Mapping[str, Any] | Message, channel: str | None) -> Message:
        if isinstance(target, Message):
            return target
        if isinstance(target, Mapping):
            channel = channel or target.get("channel")
            target = str(target["ts"])
        msg = self.workspace.find_message(channel, target)
        if msg is None:
            raise KeyError(f"no message with ts {target!r}")
        return msg

    def _response_url(self, rid: str) -> str:
        return f"{self._require_base()}/response/{rid}"
