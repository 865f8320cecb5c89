"""The whole product on loopback over Socket Mode: the bot holds a WebSocket to the emulator.

Like :func:`tests.support.harness.running_bot`, but the bot starts with
``SLACK_APP_TOKEN`` and the emulator has no request URL at all: every command,
click, submission and event can only reach the bot over the link it opened.
The bot's HTTP server still runs (``/healthz``, ``/readyz``, ``/metrics``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bot.runtime import build_runtime
from bot.server import create_asgi
from bot.settings import load_settings
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET, Harness
from tests.support.servers import serve_asgi
from tests.support.stores import Database

APP_TOKEN = "xapp-1-A0SWITCHBD-0000-test-app-token"


@contextlib.asynccontextmanager
async def running_socket_bot(
    database: Database,
    *,
    workflows_dir: Path | None = None,
    run_workers: int = 1,
    ack_deadline: float = 3.0,
    **settings: Any,
) -> AsyncIterator[Harness]:
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), app_token=APP_TOKEN)
    slack.ack_deadline = ack_deadline
    try:
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            overrides: dict[str, Any] = {
                "SLACK_API_URL": slack.api_url,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": APP_TOKEN,
                "DATABASE_URL": database.url,
                "SWITCHBOARD_DB_SCHEMA": database.schema,
                "SWITCHBOARD_POLL_SECONDS": 0.05,
                "SWITCHBOARD_SLACK_POST_BURST": 50,
                "SWITCHBOARD_SLACK_POSTS_PER_S": 50,
                "SWITCHBOARD_SCHEDULER": False,
            } | settings
            if workflows_dir is not None:
                overrides["SWITCHBOARD_WORKFLOWS"] = workflows_dir
            config = load_settings(**overrides)
            runtime = build_runtime(config, run_workers=run_workers)
            bot = contextlib.AsyncExitStack()
            bot_url = await bot.enter_async_context(serve_asgi(create_asgi(runtime)))
            harness = Harness(slack, runtime, bot_url, config, run_workers, bot)
            try:
                async with httpx.AsyncClient() as client:
                    (await client.get(f"{bot_url}/healthz")).raise_for_status()
                await slack.socket.wait_connected()
                yield harness
            finally:
                await harness._bot.aclose()
    finally:
        await slack.aclose()
