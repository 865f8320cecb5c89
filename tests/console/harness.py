"""The bot with its console on loopback, beside the Slack emulator that signs people in.

Like ``tests/support/harness.running_bot``, but the bot listens on a port chosen first,
so ``SWITCHBOARD_CONSOLE_URL`` (the redirect URL, the only Host the console answers) is
known to both sides, and the emulator registers the console's Slack client.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import load_settings
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.servers import free_port, serve_asgi
from tests.support.stores import Database

CLIENT_ID = "1234.5678"
CLIENT_SECRET = "console-client-secret-0f9e"


@dataclass
class Console:
    slack: SlackEmulator
    runtime: Runtime
    url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def sign_in(self, http: httpx.AsyncClient, user: str, **tamper: str) -> httpx.Response:
        """The browser's path: console -> Slack's authorize page -> choose -> callback."""
        login = await http.get("/console/auth/login")
        assert login.status_code == 302, login.text
        authorize = login.headers["location"]
        params = dict(parse_qsl(urlsplit(authorize).query))
        page = await http.get(authorize)
        assert page.status_code == 200 and "Continue as" in page.text
        chosen = await http.post(
            authorize.split("?")[0],
            data=params | {"user": self.slack.user_id(user)} | tamper,
        )
        assert chosen.status_code == 302, chosen.text
        return await http.get(chosen.headers["location"])

    @contextlib.asynccontextmanager
    async def signed_in(self, user: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client signed in as ``user``, sending the session's CSRF token."""
        async with self.client() as http:
            answer = await self.sign_in(http, user)
            assert answer.status_code == 303, answer.text
            http.headers["X-CSRF-Token"] = (await http.get("/console/api/me")).json()["csrf"]
            yield http


@contextlib.asynccontextmanager
async def running_console(
    database: Database, *, workflows_dir: Path | None = None, **settings: Any
) -> AsyncIterator[Console]:
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo())
    slack.oidc.register(CLIENT_ID, CLIENT_SECRET)
    port = free_port()
    try:
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            overrides: dict[str, Any] = {
                "SLACK_API_URL": slack.api_url,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_CLIENT_ID": CLIENT_ID,
                "SLACK_CLIENT_SECRET": CLIENT_SECRET,
                "SWITCHBOARD_CONSOLE_URL": f"http://127.0.0.1:{port}",
                "DATABASE_URL": database.url,
                "SWITCHBOARD_DB_SCHEMA": database.schema,
                "SWITCHBOARD_POLL_SECONDS": 0.05,
                "SWITCHBOARD_SLACK_POST_BURST": 50,
                "SWITCHBOARD_SLACK_POSTS_PER_S": 50,
                "SWITCHBOARD_SCHEDULER": False,
            } | settings
            if workflows_dir is not None:
                overrides["SWITCHBOARD_WORKFLOWS"] = workflows_dir
            runtime = build_runtime(load_settings(**overrides))
            async with serve_asgi(create_asgi(runtime), port=port) as url:
                slack.request_url = f"{url}/slack/events"
                yield Console(slack, runtime, url)
    finally:
        await slack.aclose()


def cookie_attributes(response: httpx.Response, name: str) -> str:
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))
    return re.sub(r"^[^;]*;", "", header).lower()
