"""People by name: ``@carol``, an e-mail, ``user:``/``group:`` resolve to Slack user ids.

Against the Slack emulator (its users.list, usergroups.list and users.lookupByEmail):
``serve`` resolves names at start-up, so an approver written ``@carol`` gets the card
and may decide; ``switchboard check --workspace`` reports each name that names nobody
at its file:line and exits 1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.people import SlackDirectory, resolve_name
from bot.settings import BUNDLED_TEMPLATES, BUNDLED_WORKFLOWS
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.harness import running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_folder

TOKEN = "xoxb-people-test"

NAMED = """\
name: named
triggers:
  - command: named
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers:
        - "@carol"
        - "@finance"
        - "carol@switchboard-sandbox.example.com"
        - "user:dave"
        - "group:finance-leads"
        - "@nobody"
        - "group:carol"
        - "ghost@nowhere.example.com"
  - id: done
    post: {text: "approved"}
"""


async def test_names_resolve_to_ids_groups_stay_groups() -> None:
    slack = SlackEmulator("secret", TOKEN, WorkspaceSeed.demo())
    async with serve_asgi(slack.asgi_app) as url:
        slack.base_url = url
        directory = SlackDirectory(AsyncWebClient(token=TOKEN, base_url=slack.api_url))
        carol, dave = slack.user_id("carol"), slack.user_id("dave")
        assert await resolve_name(directory, "@carol") == (carol, None)
        assert await resolve_name(directory, "user:dave") == (dave, None)
        email = "carol@switchboard-sandbox.example.com"
        assert await resolve_name(directory, email) == (carol, None)
        assert await resolve_name(directory, "@finance") == ("@finance", None)
        assert await resolve_name(directory, "group:finance-leads") == ("@finance-leads", None)
        assert await resolve_name(directory, "#finance-approvals") == ("#finance-approvals", None)
        assert await resolve_name(directory, carol) == (carol, None)
        written, problem = await resolve_name(directory, "group:carol")
        assert (written, problem) == ("group:carol", "no user group @carol in the workspace")
        await slack.aclose()


async def test_check_workspace_reports_names_that_resolve_to_nobody(tmp_path: Path) -> None:
    (tmp_path / "named.yaml").write_text(NAMED)
    slack = SlackEmulator("secret", TOKEN, WorkspaceSeed.demo())
    async with serve_asgi(slack.asgi_app) as url:
        slack.base_url = url
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.api_url}
        # In a thread: the command runs its own event loop while the emulator serves in this one.
        result = await asyncio.to_thread(_switchboard, env, "check", "--workspace", str(tmp_path))
        await slack.aclose()
    lines = result.stdout.splitlines()
    file = tmp_path / "named.yaml"
    assert lines == [
        f"{file}:14: steps[0].approve.approvers[5]: no user group or user @nobody in the "
        "workspace (user:NAME, group:HANDLE or an id)",
        f"{file}:15: steps[0].approve.approvers[6]: no user group @carol in the workspace",
        f"{file}:16: steps[0].approve.approvers[7]: no user with e-mail ghost@nowhere.example.com",
        "1 workflow ok, 3 errors",
    ], (lines, result.stderr)
    assert result.exit_code == 1


def test_check_workspace_without_a_token_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "named.yaml").write_text(NAMED)
    result = _switchboard({"SLACK_BOT_TOKEN": ""}, "check", "--workspace", str(tmp_path))
    assert result.stderr.splitlines() == [
        "check --workspace needs SLACK_BOT_TOKEN (and SLACK_API_URL for a stand-in Slack)"
    ]
    assert result.exit_code == 2


def _switchboard(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.slow  # a run through the bot and a CLI command: about 5 s on a loaded machine
async def test_an_approver_written_by_name_gets_the_card_and_decides(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "named.yaml").write_text(
        "name: named\ntriggers:\n  - command: named\nsteps:\n  - id: review\n    approve:\n"
        '      channel: "#finance-approvals"\n      approvers: ["@dave"]\n'
        '  - id: done\n    post: {text: "approved by <@{{ steps.review.decided_by }}>"}\n'
    )
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        dave = slack.user_id("dave")
        await slack.slash_command("alice", "general", "named please")
        card = await slack.wait_for(
            lambda: next(iter(slack.messages("finance-approvals")), None),
            message="no approval card",
        )
        assert f"<@{dave}>" in str(card["blocks"])
        assert "@dave" not in str(card["blocks"])
        channel = "finance-approvals"
        click = await slack.click("dave", card["ts"], "approval:approve", channel=channel)
        assert click.ok
        root = await harness.root_message("general", "started named")
        await slack.wait_for(
            lambda: any(
                f"approved by <@{dave}>" in m.get("text", "")
                for m in slack.thread("general", root["ts"])
            ),
            message="dave's approval did not count",
        )
        # `switchboard workflows` resolves names as serve did: the version served is current.
        env = database.env() | {
            "SLACK_BOT_TOKEN": harness.settings.slack_bot_token.get_secret_value(),
            "SLACK_API_URL": slack.api_url,
            "SWITCHBOARD_WORKFLOWS": str(tmp_path),
        }
        listed = await asyncio.to_thread(_switchboard, env, "workflows")
        (row,) = [line for line in listed.stdout.splitlines() if "named" in line]
        assert row.rstrip(" │").endswith("yes"), listed.stdout


def test_every_bundled_workflow_survives_the_rewrite_of_its_names() -> None:
    # resolve_workflow rebuilds a definition from its dump: nothing else may change.
    result = load_folder(BUNDLED_WORKFLOWS, CheckContext(templates_dir=BUNDLED_TEMPLATES))
    assert result.workflows
    for workflow in result.workflows.values():
        dumped = workflow.model_dump(by_alias=True, exclude_unset=True)
        assert Workflow.model_validate(dumped) == workflow, workflow.name
