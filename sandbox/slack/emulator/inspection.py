"""What people see, the Web API log, scripted faults and limits, and waiting for a condition."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable

from ..delivery import DeliveryResult
from ..records import JSON, Message
from ..web_api import ApiCall, Fault
from .core import EmulatorCore, T


class Inspection(EmulatorCore):
    """Read-only views of the workspace for tests and the page, plus fault injection."""

    def messages(self, channel: str, include_replies: bool = False) -> list[JSON]:
        """Messages in a channel, oldest first (top level unless ``include_replies``)."""
        ch = self.channel(channel)
        msgs = (
            list(self.workspace.iter_messages(ch))
            if include_replies
            else self.workspace.top_level(ch)
        )
        return [self._with_channel(m) for m in msgs]

    def thread(self, channel: str, ts: str) -> list[JSON]:
        """A thread: the parent then its replies."""
        return [self._with_channel(m) for m in self.workspace.thread_of(self.channel(channel), ts)]

    def message(self, channel: str, ts: str) -> JSON | None:
        msg = self.workspace.find_message(channel, ts)
        return self._with_channel(msg) if msg else None

    def _with_channel(self, msg: Message) -> JSON:
        out = self.workspace.message_dict(msg)
        out["channel"] = msg.channel
        return out

    def ephemerals(self, user: str, channel: str | None = None) -> list[JSON]:
        """Ephemeral messages a user saw (chat.postEphemeral, command replies, response_url)."""
        uid = self.user_id(user)
        cid = self.channel_id(channel) if channel else None
        return [
            e.to_dict()
            for e in self.workspace.ephemerals
            if e.user == uid and not e.deleted and (cid is None or e.channel == cid)
        ]

    def home_view(self, user: str) -> JSON | None:
        view = self.workspace.views.get(self.workspace.home_views.get(self.user_id(user), ""))
        return self.workspace.view_dict(view) if view else None

    def open_views(self, user: str) -> list[JSON]:
        """The user's modal stack, bottom first."""
        stack = self.workspace.modal_stacks.get(self.user_id(user), [])
        return [self.workspace.view_dict(self.workspace.views[v]) for v in stack]

    def view(self, view_id: str) -> JSON | None:
        view = self.workspace.views.get(view_id)
        return self.workspace.view_dict(view) if view else None

    def view_errors(self, view_id: str) -> dict[str, str]:
        view = self.workspace.views.get(view_id)
        return dict(view.errors) if view else {}

    def files(self) -> list[JSON]:
        return [self._methods.file_dict(f) for f in self.workspace.files.values() if f.completed]

    def file_content(self, file_id: str) -> bytes | None:
        f = self.workspace.files.get(file_id)
        return f.content if f else None

    # ------------------------------------------------------------------ API log, faults, limits

    def api_calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._api.calls if method is None or c.method == method]

    def deliveries(self, kind: str | None = None) -> list[DeliveryResult]:
        return [d for d in self._deliverer.log if kind is None or d.kind == kind]

    def on_api_call(self, listener: Callable[[ApiCall], None] | None) -> None:
        """Observe every Web API call as it is recorded (e.g. for a developer panel)."""
        self._api.on_call = listener

    def on_delivery(self, listener: Callable[[DeliveryResult], None] | None) -> None:
        """Observe every signed request to the app as its answer (or failure) is recorded."""
        self._deliverer.on_result = listener

    def inject_faults(self, method: str, faults: Iterable[Fault | int | str]) -> None:
        """Script the next calls of ``method``: ``Fault``s, 429, 500/503, or Slack error codes."""
        self._api.inject_faults(method, faults)

    def clear_faults(self) -> None:
        self._api.clear_faults()

    def set_rate_limit(self, method: str, per_minute: int | None) -> None:
        """Change (or with None remove) the per-minute limit of one method."""
        if per_minute is None:
            self._api.rate_limiter.limits.pop(method, None)
        else:
            self._api.rate_limiter.limits[method] = per_minute

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self,
        predicate: Callable[[], T | Awaitable[T]],
        timeout: float = 15.0,  # noqa: ASYNC109  (the name tests expect)
        interval: float = 0.02,
        message: str | None = None,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that.

        The default is generous on purpose: a condition that holds returns at once, and
        only a failing test pays the wait. Tight defaults made tests flaky on a loaded
        2-core CI machine (a card settled, its thread note 5 s later under load).
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(message or f"condition not met within {timeout}s")
            await asyncio.sleep(interval)
