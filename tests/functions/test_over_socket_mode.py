"""The Workflow Builder step over Socket Mode: ``function_executed`` arrives on the link."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sandbox.slack.functions import WorkflowBuilder
from tests.functions.support import EXPENSE, card_in, expense_flow, manifest
from tests.support.socket_harness import running_socket_bot
from tests.support.stores import sqlite_database


async def test_the_step_runs_and_completes_over_socket_mode(
    tmp_path: Path, sqlite_template: Path
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "expense.yaml").write_text(textwrap.dedent(EXPENSE))
    async with (
        sqlite_database(tmp_path, sqlite_template) as db,
        running_socket_bot(db, workflows_dir=folder) as harness,
    ):
        slack = harness.slack
        assert slack.request_url is None  # only the link can carry the event
        builder = WorkflowBuilder(slack, manifest())
        flow = await builder.start(expense_flow(builder), user="alice")
        card = await card_in(harness)
        await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
        await builder.finished(flow)
        assert flow.status == "completed", flow.error
        assert flow.outputs[0]["outcome"] == "succeeded"
