"""Counts people read are in English: "1 workflow", "1 approval waiting for you",
"(1 word)", never "1 workflows" (issue 18 item 8); "1 request" in /flow stats is
checked by tests/bot/test_ack_path.py, the digest's by tests/observability/test_digest.py."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bot.cli import app
from tests.authoring.docs_yaml import ROOT
from tests.support.harness import running_bot
from tests.support.stores import Database

ONE = """
name: spend
triggers: [{command: spend}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      title: "Spend: {{ input.text }}"
"""


def said(result: Any) -> str:
    return str((result.json() or {}).get("text", ""))


async def test_slack_answers_count_in_english(database: Database, tmp_path: Path) -> None:
    (tmp_path / "spend.yaml").write_text(textwrap.dedent(ONE))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        listed = said(await slack.slash_command("alice", "general", "list"))
        assert listed.startswith("1 workflow") and "1 workflows" not in listed, listed
        await slack.slash_command("alice", "general", "spend chairs")
        await slack.wait_for(lambda: slack.messages("finance-approvals"), message="no card")
        pending = said(await slack.slash_command("carol", "general", "approvals"))
        assert pending.startswith("1 approval waiting for you"), pending


def test_hello_counts_one_word_as_a_word() -> None:
    result = CliRunner().invoke(
        app, ["test", str(ROOT / "workflows" / "examples" / "hello.yaml"), "--text", "Ada"]
    )
    assert result.exit_code == 0, result.output
    assert "Hello, Ada! (1 word)" in result.output, result.output
