"""A rejected request ends ``rejected``: stats and digests count it so, not as a success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import card_in, write_workflow
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import stats
from workflows.tables import AuditRow, RunRow

DIGEST = """
name: expense-digest
title: Expense digest
triggers:
  - command: expense-digest
steps:
  - id: daily
    digest: {channel: "#general", period: day, workflow: expense, chart: false}
"""


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "digest.yaml").write_text(DIGEST)
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


async def test_a_rejected_request_ends_rejected_and_stats_count_it(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense new laptop")
    card = await card_in(harness)
    await slack.click("carol", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": "Not in budget"}})

    async def ended() -> RunRow | None:
        async with harness.runtime.store.read() as session:
            run = (await session.scalars(select(RunRow))).one()
        return run if run.finished_at is not None else None

    run = await slack.wait_for(ended, message="the run did not end")
    assert run.status == "rejected"
    async with harness.runtime.store.read() as session:
        actions = list(await session.scalars(select(AuditRow.action)))
    assert "run.rejected" in actions and "run.succeeded" not in actions

    now = harness.runtime.engine.clock.now()
    numbers = await stats.collect(
        harness.runtime.store, start=now - timedelta(days=1), end=now + timedelta(1), now=now
    )
    assert numbers.outcomes == {"rejected": 1} and numbers.rejections == 1
    assert numbers.finished == 1 and numbers.failures == 0
    shown = stats.summary(numbers)
    assert shown["rejections"] == 1
    assert shown["workflows"][0]["outcomes"] == "1 rejected"

    await slack.slash_command("alice", "general", "expense-digest")
    digest = await harness.root_message("general", "Daily digest")
    assert "1 rejected" in str(digest["blocks"]) and "succeeded" not in str(digest["blocks"])

    status = await slack.slash_command("alice", "general", f"status {run.id}")
    assert "of *expense* is *rejected*" in status.body, status.body
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{harness.bot_url}/metrics")).text
    finished = {
        line.split('status="')[1].split('"')[0]: line.rsplit(" ", 1)[1]
        for line in metrics.splitlines()
        if line.startswith("switchboard_runs_finished_total{") and 'workflow="expense"' in line
    }
    assert finished == {"rejected": "1.0"}, finished
