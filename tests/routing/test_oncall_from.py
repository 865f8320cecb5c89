"""On-call from a system (issue 20 item 5): a route owner's ``oncall_from`` asks an
on-call API (PagerDuty-shaped, a real local HTTP server) who is on call now, and the card
goes to that person by DM. When the system is down the request is not lost: the card
goes to the owner's channel and the thread says why. ``check`` refuses a lookup with no
connection to ask.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from bot.cli import app
from sandbox.slack import WorkspaceSeed
from tests.support.harness import Harness, running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database

ONCALL = """
name: pages
triggers: [{command: page}]
steps:
  - id: route
    route:
      label: "{{ 'ops' }}"
      triage: "#general"
      oncall_connection: pagerduty
      owners:
        ops:
          channel: "#ap-inbox"
          oncall_from:
            path: /oncalls
            params: {schedule_ids: PX1}
            user: oncalls[0].user.email
      until: claim
"""


class PagerDuty:
    """GET /oncalls as PagerDuty answers it (trimmed), or 503 when told it is down."""

    def __init__(self) -> None:
        self.down = False
        self.asked: list[dict[str, str]] = []

    async def oncalls(self, request: Request) -> JSONResponse:
        self.asked.append(dict(request.query_params))
        if self.down:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        on_call = {"user": {"summary": "Dave Diaz", "email": "dave@example.com"}}
        return JSONResponse({"oncalls": [on_call]})


def seed() -> WorkspaceSeed:
    demo = WorkspaceSeed.demo()
    users = [
        u.model_copy(update={"email": f"{u.name}@example.com"}) if u.name == "dave" else u
        for u in demo.users
    ]
    return demo.model_copy(update={"users": users})


@pytest.fixture
async def pagerduty() -> AsyncIterator[tuple[PagerDuty, str]]:
    system = PagerDuty()
    api = Starlette(routes=[Route("/api/oncalls", system.oncalls)])
    async with serve_asgi(api) as url:
        yield system, url


def folder(tmp_path: Path, url: str) -> Path:
    (tmp_path / "pages.yaml").write_text(textwrap.dedent(ONCALL))
    (tmp_path / "connections.yaml").write_text(
        f"connections:\n  pagerduty: {{type: http, base_url: '{url}/api', "
        "retry: {attempts: 1}}\n"
    )
    return tmp_path


async def card_for(harness: Harness, channel: str) -> dict[str, Any]:
    return await harness.slack.wait_for(
        lambda: next(iter(harness.slack.messages(channel)), None), message=f"no card in {channel}"
    )


async def test_the_card_goes_to_whoever_is_on_call_now(
    database: Database, tmp_path: Path, pagerduty: tuple[PagerDuty, str]
) -> None:
    system, url = pagerduty
    async with running_bot(database, workflows_dir=folder(tmp_path, url), seed=seed()) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "page the database is down")
        card = await card_for(harness, slack.dm_channel("dave").id)
        assert "the database is down" in card["text"]
        assert system.asked == [{"schedule_ids": "PX1"}]
        assert slack.messages("ap-inbox") == []


async def test_an_on_call_system_that_is_down_loses_no_request(
    database: Database, tmp_path: Path, pagerduty: tuple[PagerDuty, str]
) -> None:
    system, url = pagerduty
    system.down = True
    async with running_bot(database, workflows_dir=folder(tmp_path, url), seed=seed()) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "page the disk is full")
        card = await card_for(harness, "ap-inbox")
        assert "the disk is full" in card["text"]
        root = await harness.root_message("general", "started pages")
        await slack.wait_for(
            lambda: any(
                "on-call lookup failed" in m.get("text", "")
                for m in slack.thread("general", root["ts"])
            ),
            message="the thread never said why the card went to the channel",
        )
        assert slack.messages(slack.dm_channel("dave").id) == []


def test_check_refuses_a_lookup_with_no_connection_to_ask(tmp_path: Path) -> None:
    (tmp_path / "pages.yaml").write_text(
        textwrap.dedent(ONCALL).replace("      oncall_connection: pagerduty\n", "")
    )
    result = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "owner 'ops' has oncall_from: set the route's oncall_connection" in result.output
