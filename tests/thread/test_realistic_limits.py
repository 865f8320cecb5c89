"""The emulator's realistic mode: Slack's pacing as token buckets, seen through slack_sdk."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator, WorkspaceSeed
from sandbox.slack.web_api import POST_BURST, REALISTIC
from tests.support.servers import serve_asgi

TOKEN = "xoxb-realistic-token"


@pytest.fixture
async def client() -> AsyncIterator[tuple[SlackEmulator, AsyncWebClient]]:
    emulator = SlackEmulator("secret", TOKEN, WorkspaceSeed.demo(), rate_limits=REALISTIC)
    async with serve_asgi(emulator.asgi_app) as url:
        emulator.base_url = url
        yield emulator, AsyncWebClient(token=TOKEN, base_url=emulator.api_url)
    await emulator.aclose()


async def test_a_channel_takes_a_short_burst_then_about_one_post_a_second(
    client: tuple[SlackEmulator, AsyncWebClient],
) -> None:
    emulator, slack = client
    for n in range(POST_BURST):
        await slack.chat_postMessage(channel="#general", text=f"burst {n}")
    with pytest.raises(SlackApiError) as info:
        await slack.chat_postMessage(channel="#general", text="one too many")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    await slack.chat_postMessage(channel="#ap-inbox", text="another channel has its own")
    started = time.monotonic()
    while True:  # the next token comes within about a second
        try:
            await slack.chat_postMessage(channel="#general", text="paced")
            break
        except SlackApiError:
            assert time.monotonic() - started < 1.5, "no token after a second"
            await emulator.wait_for(lambda: True, timeout=0.1)
    assert len(emulator.messages("#general")) == POST_BURST + 1


async def test_chat_update_is_tier_3_for_the_whole_workspace(
    client: tuple[SlackEmulator, AsyncWebClient],
) -> None:
    _, slack = client
    posted = [
        await slack.chat_postMessage(channel=channel, text="x")
        for channel in ("#general", "#ap-inbox")
    ]
    statuses = []
    for n in range(12):
        reply = posted[n % 2]
        try:
            await slack.chat_update(channel=reply["channel"], ts=reply["ts"], text=f"v{n}")
            statuses.append(200)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    # Tier 3 is 50 a minute: ten seconds' worth (8) at once, across channels, then 429.
    assert statuses == [200] * 8 + [429] * 4
