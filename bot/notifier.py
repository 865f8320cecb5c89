"""The engine's ``Chat`` port over the Slack Web API.

All Web API calls go through one ``AsyncWebClient`` whose retry handlers honour
429 + ``Retry-After``, 5xx and connection errors (slack_sdk's own handlers, not
a hand-rolled loop). ``chat.postMessage`` is additionally paced per channel
(a token bucket: a short burst, then about one per second, Slack's guidance),
so a busy thread waits instead of being throttled; nothing is dropped.
Pacing is per process; with several processes each paces its own posts.

A Retry-After longer than ``LONG_RETRY_AFTER`` is not slept through in-process
(holding a worker's slot, up to ``max_retries`` times): the call fails at once with
``ChatRateLimited`` and the engine retries the step durably, due when Slack said.
Waits here never count against a step's timeout (``workflows/chat_waits.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from aiohttp import ClientError
from opentelemetry import trace
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import Scrubber
from bot.metrics import CountingRateLimitHandler, MeteredWebClient, Metrics
from bot.render import Rendered, Renderer, RenderError
from bot.team_tokens import TeamTokens
from workflows.chat_waits import ChatRateLimited
from workflows.ports import CHAT_WORKSPACE, ChatError, ChatFile, ChatMessage, MessageRef

METADATA_EVENT = "switchboard_message"
GROUP_CACHE_SECONDS = 60.0
"""Group membership changes rarely; a minute keeps approver checks fresh enough."""
_RETRYABLE = {
    "ratelimited",
    "internal_error",
    "service_unavailable",
    "fatal_error",
    "request_timeout",
    "team_added_to_org",
}
LONG_RETRY_AFTER = 10.0
"""Seconds of Retry-After still slept through inside one call; longer waits are durable."""


def make_web_client(
    token: str,
    base_url: str,
    *,
    max_retries: int = 5,
    metrics: Metrics | None = None,
    tracer: trace.Tracer | None = None,
) -> AsyncWebClient:
    """The one Web API client; with ``metrics``, every call and every 429 is counted."""
    rate_limit = ShortRetryAfterOnly(
        AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries)
        if metrics is None
        else CountingRateLimitHandler(metrics, max_retry_count=max_retries)
    )
    options: dict[str, Any] = {
        "token": token,
        "base_url": base_url,
        "timeout": 10,
        "retry_handlers": [
            AsyncConnectionErrorRetryHandler(max_retry_count=max_retries),
            rate_limit,
            AsyncServerErrorRetryHandler(max_retry_count=max_retries),
        ],
    }
    if metrics is None:
        return AsyncWebClient(**options)
    return MeteredWebClient(metrics=metrics, tracer=tracer, **options)


class ShortRetryAfterOnly(AsyncRetryHandler):
    """slack_sdk's 429 handler, except that it gives up at once on a long Retry-After."""

    def __init__(self, inner: AsyncRetryHandler) -> None:
        super().__init__(max_retry_count=inner.max_retry_count)
        self._inner = inner

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # Asked first either way: the inner handler counts every 429 it is shown.
        result: bool = await self._inner.can_retry_async(
            state=state, request=request, response=response, error=error
        )
        if response is not None and response.status_code == 429:
            wait = retry_after_seconds(response.headers)
            return result and (wait is None or wait <= LONG_RETRY_AFTER)
        return result

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        await self._inner.prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )


def retry_after_seconds(headers: Any) -> float | None:
    """The Retry-After header's seconds (aiohttp gives lists, SlackResponse strings)."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return float(first)
            except (TypeError, ValueError):
                return None
    return None


class ChannelPacer:
    """Token bucket per channel: ``burst`` posts at once, then ``rate`` per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self._burst = burst
        self._rate = rate
        self._tokens: dict[str, float] = defaultdict(lambda: float(burst))
        self._stamp: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def acquire(self, channel: str) -> None:
        async with self._locks[channel]:
            now = time.monotonic()
            last = self._stamp.get(channel, now)
            tokens = min(self._burst, self._tokens[channel] + (now - last) * self._rate)
            if tokens < 1:
                await asyncio.sleep((1 - tokens) / self._rate)
                tokens = 1.0
                now = time.monotonic()
            self._tokens[channel] = tokens - 1
            self._stamp[channel] = now


class SlackChat:
    def __init__(
        self,
        client: AsyncWebClient,
        renderer: Renderer,
        pacer: ChannelPacer,
        scrubber: Scrubber | None = None,
        tokens: TeamTokens | None = None,
    ) -> None:
        self._client = client
        self._tokens = tokens
        """Several workspaces: each call uses the token of the task's workspace (else the
        client's own token)."""
        self._renderer = renderer
        self._pacer = pacer
        # Last line of defence: a secret that reached a step's output is not posted.
        self._scrubber = scrubber or Scrubber()
        # Names and groups differ per workspace: one cache each.
        self._channel_ids_of: defaultdict[str | None, dict[str, str]] = defaultdict(dict)
        self._groups_of: defaultdict[str | None, dict[str, tuple[float, list[str]]]] = defaultdict(
            dict
        )
        self._group_ids_of: defaultdict[str | None, dict[str, str]] = defaultdict(dict)

    @property
    def _channel_ids(self) -> dict[str, str]:
        return self._channel_ids_of[_team()]

    @property
    def _groups(self) -> dict[str, tuple[float, list[str]]]:
        return self._groups_of[_team()]

    @property
    def _group_ids(self) -> dict[str, str]:
        """Handle -> id of the current workspace's user groups (a group's id never changes)."""
        return self._group_ids_of[_team()]

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        rendered = self._render(message)
        await self._pacer.acquire(channel)
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": rendered.text,
            "blocks": rendered.blocks,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if message.key:
            kwargs["metadata"] = {
                "event_type": METADATA_EVENT,
                "event_payload": {"key": message.key},
            }
        response = await self._call("chat_postMessage", **kwargs)
        return MessageRef(str(response["channel"]), str(response["ts"]))

    async def update(self, ref: MessageRef, message: ChatMessage) -> None:
        rendered = self._render(message)
        await self._call(
            "chat_update",
            channel=ref.channel,
            ts=ref.ts,
            text=rendered.text,
            blocks=rendered.blocks,
        )

    async def find(
        self, channel: str, key: str, *, thread_ts: str | None = None
    ) -> MessageRef | None:
        if thread_ts:
            response = await self._call(
                "conversations_replies",
                channel=channel,
                ts=thread_ts,
                include_all_metadata=True,
                limit=200,
            )
        else:
            response = await self._call(
                "conversations_history", channel=channel, include_all_metadata=True, limit=200
            )
        for item in response.get("messages", []):
            payload = (item.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key:
                return MessageRef(channel, str(item["ts"]))
        return None

    async def resolve_channel(self, name_or_id: str) -> str:
        if not name_or_id.startswith("#"):
            return name_or_id
        name = name_or_id[1:]
        if name not in self._channel_ids:
            cursor = None
            while True:
                response = await self._call(
                    "conversations_list",
                    limit=1000,
                    cursor=cursor,
                    types="public_channel,private_channel",
                )
                for item in response.get("channels", []):
                    self._channel_ids[str(item["name"])] = str(item["id"])
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if name in self._channel_ids or not cursor:
                    break
        if name not in self._channel_ids:
            raise ChatError(f"channel #{name} not found", retryable=False)
        return self._channel_ids[name]

    async def open_dm(self, user_id: str) -> str:
        response = await self._call("conversations_open", users=user_id)
        return str(response["channel"]["id"])

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        key = handle_or_id.lstrip("@")
        cached = self._groups.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        group_id = key if key.startswith("S") else await self.usergroup_id(key)
        if group_id is None:
            raise ChatError(f"user group @{key} not found", retryable=False)
        response = await self._call("usergroups_users_list", usergroup=group_id)
        users = [str(u) for u in response.get("users", [])]
        self._groups[key] = (time.monotonic() + GROUP_CACHE_SECONDS, users)
        return users

    async def usergroup_id(self, handle: str) -> str | None:
        key = handle.lstrip("@")
        if key not in self._group_ids:
            response = await self._call("usergroups_list")
            for group in response.get("usergroups", []):
                self._group_ids[str(group.get("handle"))] = str(group["id"])
        return self._group_ids.get(key)

    async def user_by_email(self, email: str) -> str | None:
        try:
            response = await self._call("users_lookupByEmail", email=email)
        except ChatError as exc:
            if str(exc).endswith(": users_not_found"):  # _call's "Slack method: error"
                return None
            raise
        return str(response["user"]["id"])

    async def channel_members(self, name_or_id: str) -> list[str]:
        channel = await self.resolve_channel(name_or_id)
        members: list[str] = []
        cursor = None
        while True:
            response = await self._call(
                "conversations_members", channel=channel, cursor=cursor, limit=1000
            )
            members += [str(m) for m in response.get("members", [])]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    async def upload(self, channel: str, file: ChatFile, *, thread_ts: str | None = None) -> None:
        await self._pacer.acquire(channel)
        kwargs: dict[str, Any] = {
            "channel": channel,
            "filename": file.filename,
            "content": file.content,
            "title": self._scrubber.text(file.title),
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        await self._call("files_upload_v2", **kwargs)

    async def message_text(self, channel: str, ts: str) -> str:
        response = await self._call(
            "conversations_history", channel=channel, latest=ts, inclusive=True, limit=1
        )
        messages = response.get("messages", [])
        if not messages or messages[0].get("ts") != ts:
            response = await self._call("conversations_replies", channel=channel, ts=ts, limit=1)
            messages = response.get("messages", [])
        return str(messages[0].get("text", "")) if messages else ""

    async def publish_home(self, user_id: str, view: ChatMessage) -> None:
        """``views.publish`` of a Home view rendered from ``view`` (``ports.HomePublisher``)."""
        try:
            rendered = self._renderer.render_view(view.template, view.data)
        except RenderError as exc:
            raise ChatError(str(exc), retryable=False) from None
        await self._call("views_publish", user_id=user_id, view=self._scrubber.value(rendered))

    def _render(self, message: ChatMessage) -> Rendered:
        try:
            rendered = self._renderer.render(message.template, message.data)
        except RenderError as exc:
            raise ChatError(str(exc), retryable=False) from None
        return Rendered(
            text=self._scrubber.text(rendered.text), blocks=self._scrubber.value(rendered.blocks)
        )

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            if self._tokens is None:
                return await getattr(self._client, method)(**kwargs)
            return await self._call_as_workspace(method, kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            wait = retry_after_seconds(exc.response.headers)
            if exc.response.status_code == 429 and wait is not None:
                raise ChatRateLimited(
                    f"Slack {method.replace('_', '.', 1)}: {error}, retry after {wait:g}s",
                    retry_after=wait,
                ) from None
            raise ChatError(
                f"Slack {method.replace('_', '.', 1)}: {error}", retryable=error in _RETRYABLE
            ) from None
        except (ClientError, TimeoutError) as exc:
            raise ChatError(f"Slack {method}: {type(exc).__name__}", retryable=True) from None

    async def _call_as_workspace(self, method: str, kwargs: dict[str, Any]) -> Any:
        """With the task's workspace token; a token Slack calls expired (our clock or its
        expiry behind Slack's) is refreshed now and the call made once more."""
        assert self._tokens is not None
        try:
            return await getattr(self._client, method)(token=await self._tokens.token(), **kwargs)
        except SlackApiError as exc:
            if exc.response.get("error") != "token_expired":
                raise
        fresh = await self._tokens.token(refresh=True)
        return await getattr(self._client, method)(token=fresh, **kwargs)


def _team() -> str | None:
    workspace = CHAT_WORKSPACE.get()
    return workspace.team_id if workspace is not None else None
