"""``SlackEmulator``: one local Slack workspace the bot cannot tell from Slack.

It serves the Web API (``.asgi_app``), delivers signed commands, clicks, view
submissions, shortcuts and events to the bot's request URL, and lets tests and
the demo read what every user saw. Typical use::

    emu = SlackEmulator(signing_secret, bot_token, WorkspaceSeed.demo())
    async with serve_asgi(emu.asgi_app) as url:
        emu.base_url = url                    # where response_urls and uploads point
        emu.request_url = bot_url + "/slack/events"
        await emu.slash_command("alice", "#general", "start invoice")
        await emu.wait_for(lambda: emu.messages("#general"))
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette

from . import payloads
from .blockkit_limits import validate_view
from .delivery import SLACK_RETRY_DELAYS, Deliverer, DeliveryResult
from .methods import ApiError, Methods
from .state import JSON, Channel, Ephemeral, Message, User, View, Workspace, WorkspaceSeed
from .web_api import DEFAULT_RATE_LIMITS, ApiCall, Fault, WebApi

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
# Element type → the field a block_actions action / view state carries the choice in.
SELECTED_FIELD = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
OPTION_ELEMENTS = {"static_select", "radio_buttons", "overflow", "external_select"}
MULTI_OPTION_ELEMENTS = {"multi_static_select", "checkboxes", "multi_external_select"}


class SlackEmulator:
    """A local Slack workspace: Web API, signed delivery to the bot, and inspection helpers."""

    def __init__(
        self,
        signing_secret: str,
        bot_token: str,
        workspace: WorkspaceSeed | Mapping[str, Any] | None = None,
        request_url: str | None = None,
        *,
        base_url: str | None = None,
        rate_limits: Mapping[str, int] | None = DEFAULT_RATE_LIMITS,
        ack_deadline: float = 3.0,
        event_retry_delays: Sequence[float] | None = SLACK_RETRY_DELAYS,
        trigger_ttl: float = 3.0,
        bot_events: Iterable[str] = DEFAULT_BOT_EVENTS,
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
        self._deliverer = Deliverer(signing_secret, request_url, ack_deadline, event_retry_delays)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._collecting: list[JSON] | None = None
        self._app: Starlette | None = None

    # ------------------------------------------------------------------ wiring

    @property
    def asgi_app(self) -> Starlette:
        """The Starlette app serving /api/{method}, /response/{id} and /upload/v1/{id}."""
        if self._app is None:
            self._app = Starlette(routes=self._api.routes)
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
        if not self._subscribed(event) or not self.request_url:
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

    async def send_event(self, event: JSON) -> DeliveryResult:
        """Deliver any event (wrapped in an event_callback envelope), with Slack's retries."""
        return await self._deliver_event(event)

    async def verify_url(self, challenge: str = "sandbox-challenge") -> DeliveryResult:
        """Slack's url_verification handshake; ``outcome`` is "verified" when echoed back."""
        result = await self._deliverer.send_json(
            "url_verification", payloads.url_verification(challenge)
        )
        body = result.json()
        echoed = body.get("challenge") if isinstance(body, dict) else result.body.strip()
        result.outcome = "verified" if result.ok and echoed == challenge else "failed"
        return result

    async def retry_event(self, event_id: str) -> DeliveryResult:
        """Send the next retry of a failed event now (see ``event_retry_delays=None``)."""
        return await self._deliverer.retry_event(event_id, self._spawn)

    def failed_events(self) -> list[str]:
        return self._deliverer.failed_events()

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

    # ------------------------------------------------------------------ users acting

    async def user_posts(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
    ) -> JSON:
        """A person posts a message: stored, then delivered as message (and app_mention) events."""
        u = self.user(user)
        ch = self._conversation(u, channel)
        if u.id not in ch.members:
            raise PermissionError(f"{u.name} is not a member of {ch.name}")

        def act() -> Message:
            parent = ch.messages.get(thread_ts) if thread_ts else None
            msg = Message(
                channel=ch.id,
                ts=self.workspace.clock.next(),
                user=u.id,
                text=text,
                blocks=blocks if blocks is not None else payloads.rich_text_blocks(text),
                thread_ts=(parent.thread_ts or parent.ts) if parent else None,
                team=self.workspace.team_id,
            )
            return self._methods.post(msg)

        msg, _ = await self._deliver_collected(act)
        out = self.workspace.message_dict(msg)
        out["channel"] = ch.id
        return out

    async def user_edits(self, user: str, channel: str, ts: str, text: str) -> list[DeliveryResult]:
        """A person edits their message: delivered as a message_changed event."""
        msg = self._message(ts, channel)
        if msg.user != self.user_id(user):
            raise PermissionError("people can only edit their own messages")
        _, results = await self._deliver_collected(
            lambda: self._methods.replace(msg, text, payloads.rich_text_blocks(text))
        )
        return results

    async def add_reaction(
        self, user: str, channel: str, ts: str, name: str
    ) -> list[DeliveryResult]:
        """A person reacts to a message: delivered as a reaction_added event."""
        msg = self._message(ts, channel)
        uid = self.user_id(user)
        try:
            _, results = await self._deliver_collected(
                lambda: self._methods.react(msg, uid, name.strip(":"))
            )
        except ApiError as exc:
            raise ValueError(exc.error) from None
        return results

    async def open_home(self, user: str) -> DeliveryResult:
        """A person opens the app's Home tab: delivers app_home_opened."""
        u = self.user(user)
        dm = self.dm_channel(u.id)
        view = self.workspace.views.get(self.workspace.home_views.get(u.id, ""))
        event = payloads.app_home_opened_event(
            self.workspace, u.id, dm.id, view, self.workspace.clock.next()
        )
        return await self._deliver_event(event)

    async def slash_command(
        self, user: str, channel: str | None, text: str = "", command: str = "/flow"
    ) -> DeliveryResult:
        """A person runs a slash command; an answer in the ack body is shown as Slack shows it."""
        u = self.user(user)
        ch = self._conversation(u, channel)
        trigger = self.workspace.new_trigger(u.id)
        ru = self.workspace.new_response_url(u.id, ch.id)
        form = payloads.slash_command_form(
            self.workspace, u, ch, command, text, self._response_url(ru.id), trigger.id
        )
        result = await self._deliverer.send_form("slash_command", form)
        if not result.ok:
            reason = "operation_timeout" if result.timed_out else "dispatch_failed"
            self._slackbot_says(u.id, ch.id, f'{command} failed with the error "{reason}"')
            result.outcome = reason
            return result
        if result.body.strip():
            body = result.json()
            reply = body if isinstance(body, dict) else {"text": result.body}
            try:
                self._methods.respond(ru, reply, source="command_response")
                result.outcome = "responded"
            except ApiError as exc:
                result.outcome = exc.error
        return result

    def _response_url(self, rid: str) -> str:
        return f"{self._require_base()}/response/{rid}"

    def _slackbot_says(self, user: str, channel: str, text: str) -> None:
        self.workspace.ephemerals.append(
            Ephemeral(
                user=user,
                channel=channel,
                ts=self.workspace.clock.next(),
                text=text,
                source="slackbot",
            )
        )

    async def click(
        self,
        user: str,
        message_or_ts: str | Mapping[str, Any] | Message | Ephemeral,
        action_id: str,
        value: Any = None,
        *,
        channel: str | None = None,
        block_id: str | None = None,
    ) -> DeliveryResult:
        """A person clicks (or picks in) an interactive element of a message, ephemeral or view.

        ``message_or_ts`` is a message ts / dict / Message, an Ephemeral, or a view id.
        """
        u = self.user(user)
        ws = self.workspace
        trigger = ws.new_trigger(u.id)
        if isinstance(message_or_ts, str) and message_or_ts in ws.views:
            view = ws.views[message_or_ts]
            action = self._action(view.blocks, action_id, value, block_id)
            self._apply_action_to_state(view, action)
            payload = payloads.block_actions(ws, u, [action], trigger.id, view=view)
            return await self._deliverer.send_interaction(payload)
        if isinstance(message_or_ts, Ephemeral) or (
            isinstance(message_or_ts, Mapping) and message_or_ts.get("source") is not None
        ):
            eph = (
                message_or_ts
                if isinstance(message_or_ts, Ephemeral)
                else self._ephemeral(message_or_ts)
            )
            ch = self.channel(eph.channel)
            action = self._action(eph.blocks or [], action_id, value, block_id)
            ru = ws.new_response_url(
                u.id, ch.id, eph.ts, is_ephemeral=True, thread_ts=eph.thread_ts
            )
            payload = payloads.block_actions(
                ws,
                u,
                [action],
                trigger.id,
                channel=ch,
                message_ts=eph.ts,
                is_ephemeral=True,
                response_url=self._response_url(ru.id),
            )
            return await self._deliverer.send_interaction(payload)
        msg = self._message(message_or_ts, channel)
        ch = self.channel(msg.channel)
        # Anyone in the workspace can open a public channel and click in it; private ones
        # only their members.
        if ch.is_private and u.id not in ch.members:
            raise PermissionError(f"{u.name} cannot see {ch.name}")
        action = self._action(msg.blocks or [], action_id, value, block_id)
        ru = ws.new_response_url(
            u.id, ch.id, msg.ts, thread_ts=msg.thread_ts if msg.is_reply else None
        )
        payload = payloads.block_actions(
            ws,
            u,
            [action],
            trigger.id,
            channel=ch,
            message=ws.message_dict(msg, include_metadata=False),
            message_ts=msg.ts,
            response_url=self._response_url(ru.id),
        )
        return await self._deliverer.send_interaction(payload)

    def _ephemeral(self, data: Mapping[str, Any]) -> Ephemeral:
        for eph in self.workspace.ephemerals:
            if eph.ts == data.get("ts") and eph.user == data.get("user"):
                return eph
        raise KeyError(f"no ephemeral message with ts {data.get('ts')!r}")

    @staticmethod
    def _find_element(
        blocks: list[JSON], action_id: str, block_id: str | None
    ) -> tuple[JSON, JSON]:
        for block in blocks:
            if block_id is not None and block.get("block_id") != block_id:
                continue
            candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
            candidates += [
                block[k] for k in ("accessory", "element") if isinstance(block.get(k), dict)
            ]
            for el in candidates:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    return block, el
        raise LookupError(f"no interactive element with action_id {action_id!r}")

    def _action(self, blocks: list[JSON], action_id: str, value: Any, block_id: str | None) -> JSON:
        block, el = self._find_element(blocks, action_id, block_id)
        kind = str(el.get("type"))
        action: JSON = {"action_id": action_id, "block_id": block["block_id"], "type": kind}
        if kind == "button":
            action["text"] = el.get("text")
            chosen = value if value is not None else el.get("value")
            if chosen is not None:
                action["value"] = chosen
            if "style" in el:
                action["style"] = el["style"]
        else:
            action.update(self._selection(el, value))
        action["action_ts"] = f"{time.time():.6f}"
        return action

    @staticmethod
    def _selection(el: JSON, value: Any) -> JSON:
        """The state / action fields Slack reports for a chosen ``value`` in element ``el``."""
        kind = str(el.get("type"))
        options = list(el.get("options") or [])
        for group in el.get("option_groups") or []:
            options += group.get("options") or []

        def option(v: Any) -> JSON:
            for opt in options:
                if opt.get("value") == v:
                    return dict(opt)
            return {"text": {"type": "plain_text", "text": str(v)}, "value": v}

        if kind in OPTION_ELEMENTS:
            return {"selected_option": option(value) if value is not None else None}
        if kind in MULTI_OPTION_ELEMENTS:
            return {"selected_options": [option(v) for v in (value or [])]}
        if kind in SELECTED_FIELD:
            return {SELECTED_FIELD[kind]: value}
        return {"value": value}

    def _apply_action_to_state(self, view: View, action: JSON) -> None:
        entry = {
            k: v
            for k, v in action.items()
            if k not in ("action_id", "block_id", "action_ts", "text")
        }
        view.state.setdefault("values", {}).setdefault(action["block_id"], {})[
            action["action_id"]
        ] = entry

    # ------------------------------------------------------------------ views

    def _top_view(self, user_id: str, view_id: str | None) -> View:
        stack = self.workspace.modal_stacks.get(user_id) or []
        if not stack:
            raise LookupError("the user has no open modal")
        if view_id is not None and view_id != stack[-1]:
            raise LookupError(f"view {view_id} is not the user's current modal")
        return self.workspace.views[stack[-1]]

    async def submit_view(
        self, user: str, view_id: str | None = None, values: Mapping[str, Any] | None = None
    ) -> DeliveryResult:
        """A person submits their current modal with ``values``.

        ``values`` maps ``action_id``, ``"block_id.action_id"`` or ``block_id`` (to a
        value, or to ``{action_id: value}``) to the entered value; required inputs
        left empty are refused client-side, as Slack's UI does.
        """
        u = self.user(user)
        view = self._top_view(u.id, view_id)
        view.state = {"values": self._state_values(view, dict(values or {}))}
        view.errors = {}
        trigger = self.workspace.new_trigger(u.id)
        result = await self._deliverer.send_interaction(
            payloads.view_submission(self.workspace, u, view, trigger.id)
        )
        if result.ok:
            result.outcome = self._apply_view_response(u.id, view, result.json())
        return result

    def _state_values(self, view: View, values: dict[str, Any]) -> JSON:
        out: JSON = {}
        previous = view.state.get("values", {})
        for block in view.blocks:
            if block.get("type") != "input" or not isinstance(block.get("element"), dict):
                continue
            el, bid = block["element"], str(block["block_id"])
            aid = str(el.get("action_id"))
            raw = values.get(f"{bid}.{aid}", values.get(aid, values.get(bid)))
            if isinstance(raw, Mapping):
                raw = raw.get(aid)
            if raw is None and aid in previous.get(bid, {}):
                out[bid] = {aid: previous[bid][aid]}
                continue
            if (raw is None or raw == "" or raw == []) and not block.get("optional", False):
                raise ValueError(f"required input {bid}.{aid} is empty (Slack would not submit)")
            entry: JSON = {"type": el.get("type")}
            entry.update(self._selection(el, raw))
            out[bid] = {aid: entry}
        return out

    def _apply_view_response(self, user_id: str, view: View, body: Any) -> str:
        ws = self.workspace
        stack = ws.modal_stacks.get(user_id, [])
        action = body.get("response_action") if isinstance(body, dict) else None
        if action is None:
            if view.id in stack:
                stack.remove(view.id)
            return "closed"
        assert isinstance(body, dict)
        if action == "errors":
            input_ids = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
            errors = body.get("errors") or {}
            view.errors = {str(k): str(v) for k, v in errors.items()}
            return "errors" if set(view.errors) <= input_ids else "invalid_errors"
        if action in ("update", "push"):
            spec = body.get("view")
            if validate_view(spec, "modal"):
                return "invalid_view"
            assert isinstance(spec, dict)
            try:
                if action == "update":
                    self._methods.update_view(view, spec)
                    return "updated"
                self._methods.push_view(user_id, spec)
            except ApiError as exc:
                return exc.error
            return "pushed"
        if action == "clear":
            ws.modal_stacks[user_id] = []
            return "cleared"
        return "invalid_response_action"

    async def close_view(self, user: str, view_id: str | None = None) -> DeliveryResult | None:
        """A person closes their modal; view_closed is delivered if ``notify_on_close``."""
        u = self.user(user)
        view = self._top_view(u.id, view_id)
        stack = self.workspace.modal_stacks[u.id]
        cleared = view.clear_on_close
        if cleared:
            stack.clear()
        else:
            stack.remove(view.id)
        if not view.notify_on_close:
            return None
        return await self._deliverer.send_interaction(
            payloads.view_closed(self.workspace, u, view, cleared)
        )

    async def message_shortcut(
        self, user: str, channel: str, ts: str, callback_id: str = "send_to_switchboard"
    ) -> DeliveryResult:
        """A person picks the app's message shortcut on a message."""
        u = self.user(user)
        msg = self._message(ts, channel)
        ch = self.channel(msg.channel)
        trigger = self.workspace.new_trigger(u.id)
        ru = self.workspace.new_response_url(u.id, ch.id)
        payload = payloads.message_action(
            self.workspace, u, ch, msg, callback_id, trigger.id, self._response_url(ru.id)
        )
        return await self._deliverer.send_interaction(payload)

    # ------------------------------------------------------------------ what people see

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
        timeout: float = 5.0,  # noqa: ASYNC109  (the name tests expect)
        interval: float = 0.02,
        message: str | None = None,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that."""
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
