"""The product in multi-workspace mode against two emulated workspaces, on loopback HTTP."""

from __future__ import annotations

import contextlib
import os
import textwrap
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import select

from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import BUNDLED_WORKFLOWS, load_settings
from sandbox.slack.oauth import SlackWorkspaces
from sandbox.standins import Standins, run_standins
from tests.oauth.workspaces import CLIENT_ID, CLIENT_SECRET, registration, seeds
from tests.support.harness import SIGNING_SECRET
from tests.support.servers import free_port, serve_asgi
from tests.support.stores import Database
from workflows.tables import GateRow, InstallationRow, RunRow

EXPENSE = """
name: expense
title: Expense approval
triggers:
  - command: expense
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      not_requester: true
      title: "Expense: {{ input.text }}"
      summary: "{{ input.user }} asks for {{ input.text }}"
  - id: book
    set: {booked: true}
"""


@dataclass
class Installed:
    """Switchboard installed (or not yet) in the two workspaces ``slack`` hosts."""

    slack: SlackWorkspaces
    runtime: Runtime
    bot_url: str

    async def install(self, team: str, user: str) -> httpx.Response:
        """A person installs the app: /slack/install, Slack's consent page, Allow, back."""
        async with httpx.AsyncClient() as browser:
            start = await browser.get(f"{self.bot_url}/slack/install")
            assert start.status_code == 302, start.text
            consent = await browser.get(start.headers["location"])
            assert consent.status_code == 200 and "Allow in" in consent.text
            query = dict(httpx.URL(start.headers["location"]).params)
            click = await browser.post(
                start.headers["location"].split("?")[0], data=query | {"team": team, "user": user}
            )
            assert click.status_code == 302
            back = click.headers["location"]
            assert urlparse(back).path == "/slack/oauth_redirect"
            # Bolt's state cookie is Secure: a browser sends it back over https only, so
            # over loopback http it is sent by hand, as the browser would.
            cookie = start.headers["set-cookie"].split(";")[0]
            return await browser.get(back, headers={"cookie": cookie})

    async def console_as(self, team: str, user: str) -> httpx.AsyncClient:
        """A browser signed in to the console with Slack, as ``user`` of ``team``."""
        http = httpx.AsyncClient(base_url=self.bot_url, timeout=10)
        login = await http.get("/console/auth/login")
        assert login.status_code == 302, login.text
        picker = await http.get(login.headers["location"])
        assert picker.status_code == 200 and "Choose a workspace" in picker.text
        authorize = f"{login.headers['location']}&team={team}"
        page = await http.get(authorize)
        assert page.status_code == 200 and "Continue as" in page.text
        params = dict(httpx.URL(authorize).params)
        chosen = await http.post(authorize.split("?")[0], data=params | {"user": user})
        assert chosen.status_code == 302, chosen.text
        signed = await http.get(chosen.headers["location"])
        assert signed.status_code == 303, signed.text
        http.headers["X-CSRF-Token"] = (await http.get("/console/api/me")).json()["csrf"]
        return http

    async def runs(self) -> list[RunRow]:
        async with self.runtime.store.read() as session:
            return list((await session.scalars(select(RunRow).order_by(RunRow.created_at))).all())

    async def gate_of(self, run_id: str) -> GateRow:
        async with self.runtime.store.read() as session:
            return (await session.scalars(select(GateRow).where(GateRow.run_id == run_id))).one()

    async def installed_teams(self) -> set[str | None]:
        async with self.runtime.store.read() as session:
            return set((await session.scalars(select(InstallationRow.team_id))).all())


@dataclass
class Examples:
    installed: Installed
    standins: Standins


@contextlib.asynccontextmanager
async def installed_bot(
    database: Database,
    folder: Path,
    expires_in: int = 43200,
    workflows: Path | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> AsyncIterator[Installed]:
    """``expires_in``: seconds each access token lives (token rotation is on). Without
    ``workflows``, EXPENSE is written to ``folder`` and run; ``env``: what connections name."""
    if workflows is None:
        (folder / "expense.yaml").write_text(textwrap.dedent(EXPENSE))
    slack = SlackWorkspaces(SIGNING_SECRET, seeds(), registration("http://unset/"))
    slack.register_sign_in(CLIENT_ID, CLIENT_SECRET)  # the console signs people in
    port = free_port()
    try:
        async with serve_asgi(slack) as slack_url:
            slack.base_url = slack_url
            config = load_settings(
                **{
                    "SLACK_API_URL": slack.api_url,
                    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "SLACK_BOT_TOKEN": "",
                    "SLACK_CLIENT_ID": CLIENT_ID,
                    "SLACK_CLIENT_SECRET": CLIENT_SECRET,
                    "DATABASE_URL": database.url,
                    "SWITCHBOARD_DB_SCHEMA": database.schema,
                    "SWITCHBOARD_WORKFLOWS": workflows or folder,
                    "SWITCHBOARD_POLL_SECONDS": 0.05,
                    "SWITCHBOARD_SCHEDULER": False,
                    "SWITCHBOARD_CONSOLE_URL": f"http://127.0.0.1:{port}",
                }
                | settings
            )
            runtime = build_runtime(config, env=env)
            async with serve_asgi(create_asgi(runtime), port=port) as bot_url:
                slack.request_url = f"{bot_url}/slack/events"
                slack.app = registration(f"{bot_url}/slack/oauth_redirect", expires_in=expires_in)
                yield Installed(slack, runtime, bot_url)
    finally:
        await slack.aclose()


@pytest.fixture
async def installed(database: Database, tmp_path: Path) -> AsyncIterator[Installed]:
    # Alice of Beta administers Switchboard there: admins see every run -- of their workspace.
    async with installed_bot(database, tmp_path, SWITCHBOARD_ADMINS="UBETAALICE") as bot:
        yield bot


@pytest.fixture
async def examples_installed(database: Database, tmp_path: Path) -> AsyncIterator[Examples]:
    """The bundled workflows (workflows/examples) against the stand-ins, in both workspaces."""
    async with run_standins(tmp_path / "standins") as standins:
        env = {**os.environ, **standins.env}
        async with installed_bot(
            database,
            tmp_path,
            workflows=BUNDLED_WORKFLOWS,
            env=env,
            SWITCHBOARD_ADMINS="UBETAALICE",
        ) as bot:
            assert not bot.runtime.definition_errors, bot.runtime.definition_errors
            yield Examples(bot, standins)


@pytest.fixture
async def short_tokens(database: Database, tmp_path: Path) -> AsyncIterator[Installed]:
    """Access tokens live 2 s and are refreshed only once expired, so one expires mid-run."""
    settings = {"SWITCHBOARD_SLACK_TOKEN_REFRESH_MINUTES": 0}
    async with installed_bot(database, tmp_path, expires_in=2, **settings) as bot:
        yield bot
