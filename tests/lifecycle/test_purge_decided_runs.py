"""Retention on runs people decided through Slack: the request text and the reason typed in
the reject modal are gone from every table after a purge, and the audit trail verifies.

``tests/operator/test_retention.py`` purges 100 engine-driven runs (no gates); this one
adds what only the bot writes: approval gates, decisions and their reasons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import card_in, write_workflow
from tests.operator.test_retention import every_row
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import audit
from workflows.retention import RetentionPolicy, purge
from workflows.tables import DecisionRow, GateRow, RunRow

REQUEST = "expense dinner-7731 at Chez Nous"
REASON = "reason-5520 the client paid"


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


async def test_a_purge_removes_request_and_reject_reason_and_the_trail_verifies(
    harness: Harness,
) -> None:
    slack, store = harness.slack, harness.runtime.store
    await slack.slash_command("alice", "general", REQUEST)
    card = await card_in(harness)
    await slack.click("carol", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": REASON}})

    async def ended() -> RunRow | None:
        async with store.read() as session:
            run = (await session.scalars(select(RunRow))).one()
        return run if run.finished_at is not None else None

    run = await slack.wait_for(ended, message="the run did not end")
    assert run.status == "rejected"
    before = await every_row(store)
    assert "dinner-7731" in before and "reason-5520" in before

    later = harness.runtime.engine.clock.now() + timedelta(days=91)
    assert await purge(store, RetentionPolicy(90), later, actor="test") == 1
    after = await every_row(store)
    assert "dinner-7731" not in after and "reason-5520" not in after
    async with store.read() as session:
        gate = (await session.scalars(select(GateRow))).one()
        decision = (await session.scalars(select(DecisionRow))).one()
        purged = await session.get(RunRow, run.id)
    assert purged is not None and purged.status == "rejected" and purged.purged_at is not None
    assert (gate.status, decision.decision) == ("rejected", "reject")
    verified = await audit.verify(store)
    assert verified.ok, verified.problem
