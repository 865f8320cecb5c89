"""The whole product on loopback: the Slack emulator and the bot, each a real HTTP server.

The bot is built by the same composition root as ``switchboard serve``; the
emulator signs and delivers Slack's requests to it and serves the Web API it
calls. Tests drive people's actions through the emulator and assert on what
people would see.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import Settings, load_settings
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.servers import serve_asgi
from tests.support.stores import Database

SIGNING_SECRET = "test-signing-secret-8f3a"
BOT_TOKEN = "xoxb-test-0000-bot-token"


@dataclass
class Harness:
    slack: SlackEmulator
    runtime: Runtime
    bot_url: str
    settings: Settings
    run_workers: int
    _bot: contextlib.AsyncExitStack

    async def restart(self) -> None:
        """Stop the bot (workers and all) and start a fresh one on the same database and Slack."""
        await self._bot.aclose()
        self._bot = contextlib.AsyncExitStack()
        self.runtime, self.bot_url = await _start_bot(
            self._bot, self.slack, self.settings, self.run_workers
        )

    async def root_message(
        self, channel: str, contains: str, timeout: float = 10
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next(
                (m for m in self.slack.messages(channel) if contains in m.get("text", "")), None
            )

        return await self.slack.wait_for(
            find, timeout=timeout, message=f"no root message containing {contains!r}"
        )

    async def thread_of(
        self, channel: str, root: dict[str, Any], replies: int, timeout: float = 10
    ) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            thread = self.slack.thread(channel, root["ts"])
            return thread if len(thread) >= replies + 1 else None

        return await self.slack.wait_for(
            enough, timeout=timeout, message=f"thread did not reach {replies} replies"
        )


async def _start_bot(
    stack: contextlib.AsyncExitStack, slack: SlackEmulator, settings: Settings, run_workers: int
) -> tuple[Runtime, str]:
    runtime = build_runtime(settings, run_workers=run_workers)
    bot_url = await stack.enter_async_context(serve_asgi(create_asgi(runtime)))
    slack.request_url = f"{bot_url}/slack/events"
    # The first HTTP exchange in a process pays for lazy imports (~70 ms in httpx/uvicorn);
    # pay it here so ack timings measure the bot.
    async with httpx.AsyncClient() as client:
        (await client.get(f"{bot_url}/healthz")).raise_for_status()
    return runtime, bot_url


@contextlib.asynccontextmanager
async def running_bot(
    database: Database,
    *,
    workflows_dir: Path | None = None,
    seed: WorkspaceSeed | None = None,
    run_workers: int = 1,
    **settings: Any,
) -> AsyncIterator[Harness]:
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, seed or WorkspaceSeed.demo())
    try:
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            overrides: dict[str, Any] = {
                "SLACK_API_URL": slack.api_url,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "DATABASE_URL": database.url,
                "SWITCHBOARD_DB_SCHEMA": database.schema,
                "SWITCHBOARD_POLL_SECONDS": 0.05,
                "SWITCHBOARD_SLACK_POST_BURST": 50,
                "SWITCHBOARD_SLACK_POSTS_PER_S": 50,
                # Off unless a test asks: a bundled cron firing mid-test would add a run.
                "SWITCHBOARD_SCHEDULER": False,
            } | settings
            if workflows_dir is not None:
                overrides["SWITCHBOARD_WORKFLOWS"] = workflows_dir
            config = load_settings(**overrides)
            bot = contextlib.AsyncExitStack()
            runtime, bot_url = await _start_bot(bot, slack, config, run_workers)
            harness = Harness(slack, runtime, bot_url, config, run_workers, bot)
            try:
                yield harness
            finally:
                await harness._bot.aclose()
    finally:
        await slack.aclose()
