"""App Home and /flow approvals show new approvals first, and only those of live runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.approvals.test_approvals_end_to_end import card_in, write_workflow
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import GateRow, RunRow

ORPHANS = 600


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


async def _seed_orphans(harness: Harness, approver: str, *, live: bool = False) -> None:
    """Open gates left behind by runs that ended before gates were closed with their run;
    ``live``: older gates of runs still waiting (someone else's backlog)."""
    long_ago = harness.runtime.engine.clock.now() - timedelta(days=30)
    runs, gates = [], []
    for n in range(ORPHANS):
        at = long_ago + timedelta(seconds=n)
        run_id = f"orphan{n:04d}"
        status = "waiting" if live else ("cancelled" if n % 2 else "succeeded")
        runs.append(
            {"id": run_id, "workflow": "expense", "status": status, "context": {}, "version": 1}
            | {"created_at": at, "updated_at": at, "finished_at": None if live else at}
        )
        gates.append(
            {"id": f"g{run_id}", "run_id": run_id, "step_id": "review", "status": "open"}
            | {"approvers": [approver], "min_approvals": 1, "escalation_level": 0}
            | {"created_at": at}
        )
    async with harness.runtime.store.transaction() as session:
        await session.execute(insert(RunRow), runs)
        await session.execute(insert(GateRow), gates)


async def test_a_new_approval_shows_despite_600_older_orphaned_open_gates(
    harness: Harness,
) -> None:
    slack = harness.slack
    await _seed_orphans(harness, slack.user_id("carol"))
    await slack.slash_command("alice", "general", "expense museum tickets")
    await card_in(harness)

    await slack.open_home("carol")
    view = await slack.wait_for(lambda: slack.home_view("carol"), message="no home for carol")
    assert "museum tickets" in str(view["blocks"])
    assert "orphan" not in str(view["blocks"])
    pending = await slack.slash_command("carol", "general", "approvals")
    assert "1 waiting for you" in pending.body and "museum tickets" in pending.body


async def test_a_new_approval_shows_despite_600_older_open_gates_of_waiting_runs(
    harness: Harness,
) -> None:
    """The scan reads the newest open gates: a backlog of older ones (here Dave's, on runs
    still waiting) must not push Carol's new approval out of the 500 read."""
    slack = harness.slack
    await _seed_orphans(harness, slack.user_id("dave"), live=True)
    await slack.slash_command("alice", "general", "expense museum tickets")
    await card_in(harness)

    await slack.open_home("carol")
    view = await slack.wait_for(lambda: slack.home_view("carol"), message="no home for carol")
    assert "museum tickets" in str(view["blocks"])
    pending = await slack.slash_command("carol", "general", "approvals")
    assert "1 waiting for you" in pending.body and "museum tickets" in pending.body
