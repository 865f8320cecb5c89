"""429 + Retry-After and injected faults, as slack_sdk's retry handlers see them."""

from __future__ import annotations

import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import Fault, SlackEmulator

from .conftest import TOKEN


async def test_injected_429_is_retried_by_sdk_handler(emulator: SlackEmulator) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=emulator.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    emulator.inject_faults("chat.postMessage", [Fault.rate_limited(retry_after=0)])
    started = time.monotonic()
    resp = await client.chat_postMessage(channel="#general", text="after a 429")
    assert resp["ok"] is True
    assert time.monotonic() - started < 3
    calls = emulator.api_calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].headers["Retry-After"] == "0"
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert len(emulator.messages("#general")) == 1


async def test_429_without_handler_surfaces_retry_after(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.inject_faults("conversations.history", [429])
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel=emulator.channel_id("general"))
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.response["error"] == "ratelimited"


async def test_tier_limit_enforced(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.set_rate_limit("users.list", 2)
    await client.users_list()
    await client.users_list()
    with pytest.raises(SlackApiError) as info:
        await client.users_list()
    assert info.value.response.status_code == 429
    assert 1 <= int(info.value.response.headers["Retry-After"]) <= 60
    emulator.set_rate_limit("users.list", None)
    assert (await client.users_list())["ok"] is True


async def test_chat_post_message_limit_is_per_channel(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.set_rate_limit("chat.postMessage", 1)
    await client.chat_postMessage(channel="#general", text="one")
    await client.chat_postMessage(channel="#ap-inbox", text="other channel")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="#general", text="two")


async def test_server_errors_and_api_errors(emulator: SlackEmulator) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=emulator.api_url)
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=1))
    emulator.inject_faults("auth.test", [500, "fatal_error"])
    with pytest.raises(SlackApiError) as info:
        await client.auth_test()
    # The 500 was retried by the handler; the retry met the scripted API error.
    assert info.value.response["error"] == "fatal_error"
    assert [c.status for c in emulator.api_calls("auth.test")] == [500, 200]
    assert (await client.auth_test())["ok"] is True
