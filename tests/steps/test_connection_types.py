"""``check`` (and start-up) refuse a connector step whose connection is of the wrong type."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.steps.support import write_folder
from tests.support.cli import switchboard
from tests.support.harness import running_bot
from tests.support.stores import Database

CONNECTIONS = """\
connections:
  crm: {type: http, base_url: "http://127.0.0.1:9/crm"}
  mail: {type: email, host: 127.0.0.1, port: 2525, security: none, from_addr: bot@example.com}
  gh: {type: github, token_env: GH_TOKEN}
"""
WRONG = """\
name: wrong
title: Wrong types
triggers: [{command: wrong}]
steps:
  - id: mail_to_crm
    email: {connection: crm, to: [a@example.com], subject: s, text: t}
  - id: ticket_by_mail
    ticket: {connection: mail, project: OPS, summary: s}
  - id: move_on_github
    ticket: {connection: gh, action: transition, issue: "1", transition: Done}
  - id: hook_by_crm
    webhook: {connection: crm, json: {a: 1}}
"""
RIGHT = """\
name: right
title: Right types
triggers: [{command: right}]
steps:
  - id: mail
    email: {connection: mail, to: [a@example.com], subject: s, text: t}
  - id: issue
    ticket: {connection: gh, summary: s}
"""


async def test_check_names_each_step_whose_connection_has_the_wrong_type(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "wf",
        {"connections.yaml": CONNECTIONS, "wrong.yaml": WRONG, "right.yaml": RIGHT},
    )
    env = {**os.environ, "SWITCHBOARD_WORKFLOWS": str(folder)}
    ran = await asyncio.to_thread(switchboard, ["check", str(folder)], cwd=Path.cwd(), env=env)
    out = ran.stdout + ran.stderr
    assert ran.returncode != 0, out
    wrong = str(folder / "wrong.yaml")
    assert f"{wrong}:6: steps[0].email.connection: connection 'crm' is http, not email" in out
    assert (
        f"{wrong}:8: steps[1].ticket.connection: connection 'mail' is email, not jira or github"
        in out
    )
    assert f"{wrong}:10: steps[2].ticket.connection: connection 'gh' is github, not jira" in out
    assert (
        f"{wrong}:12: steps[3].webhook.connection: connection 'crm' is http, not webhook_out" in out
    )
    assert "right.yaml" not in out and "1 workflow ok, 4 errors" in out


async def test_start_up_leaves_out_a_workflow_with_a_wrongly_typed_connection(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folder(tmp_path / "wf", {"connections.yaml": CONNECTIONS, "wrong.yaml": WRONG})
    monkeypatch.setenv("GH_TOKEN", "ghp_test")
    async with running_bot(database, workflows_dir=folder) as harness:
        errors = [str(e) for e in harness.runtime.definition_errors]
        assert "wrong" not in harness.runtime.workflows
    assert any("connection 'crm' is http, not email" in e for e in errors), errors
