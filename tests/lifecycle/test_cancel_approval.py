"""Ending a run waiting on an approval: everything it owns ends with it, seen through Slack."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from sandbox.slack.records import Message
from tests.approvals.test_approvals_end_to_end import buttons, card_in, settled_card, write_workflow
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import DecisionRow, GateRow, JobRow, RunRow


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


def stale_copy(harness: Harness, ts: str) -> Message:
    """The card as a client that has not yet received the update still shows it: buttons."""
    slack = harness.slack
    message = slack.workspace.find_message(slack.channel_id("finance-approvals"), ts)
    assert message is not None
    return copy.deepcopy(message)


async def _gate(harness: Harness) -> GateRow:
    async with harness.runtime.store.read() as session:
        return (await session.scalars(select(GateRow))).one()


async def test_cancel_closes_the_gate_card_thread_home_and_refuses_later_clicks(
    harness: Harness,
) -> None:
    slack = harness.slack
    started = await slack.slash_command("alice", "general", "expense hotel in Lyon")
    run_id = started.body.split("run `")[1].split("`")[0]
    card = await card_in(harness)
    await slack.open_home("carol")
    home = await slack.wait_for(lambda: slack.home_view("carol"), message="no home for carol")
    assert "hotel in Lyon" in str(home["blocks"])
    stale = stale_copy(harness, card["ts"])

    cancel = await slack.slash_command("alice", "general", f"cancel {run_id}")
    assert "Cancelled run" in cancel.body

    gate = await _gate(harness)
    assert gate.status == "cancelled" and gate.decided_by == slack.user_id("alice")
    settled = await settled_card(harness, card["ts"])
    assert "Cancelled" in str(settled["blocks"])
    assert f"<@{slack.user_id('alice')}>" in str(settled["blocks"])
    root = await harness.root_message("general", "started expense")
    await slack.wait_for(
        lambda: any("was cancelled" in m["text"] for m in slack.thread("general", root["ts"])),
        message="the thread was not told of the cancel",
    )

    def home_emptied() -> bool:
        view = slack.home_view("carol")
        return bool(view) and "Nothing is waiting for you" in str(view["blocks"])

    await slack.wait_for(home_emptied, message="carol's App Home still lists the request")
    pending = await slack.slash_command("carol", "general", "approvals")
    assert "hotel in Lyon" not in pending.body

    await slack.click("carol", stale, "approval:approve")
    told = await slack.wait_for(
        lambda: [m for m in slack.ephemerals("carol") if "cancelled" in m["text"]],
        message="the late click was not answered",
    )
    assert f"cancelled by <@{slack.user_id('alice')}>" in told[0]["text"]
    await asyncio.sleep(0.3)  # a wrongly queued signal would have run by now
    gate = await _gate(harness)
    assert gate.status == "cancelled"
    async with harness.runtime.store.read() as session:
        decisions = await session.scalar(select(func.count()).select_from(DecisionRow))
        run = await session.get(RunRow, run_id)
        live_jobs = await session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.run_id == run_id, JobRow.status.in_(("queued", "leased")))
        )
    assert decisions == 0 and run is not None and run.status == "cancelled" and live_jobs == 0
    assert not buttons(slack.message(slack.channel_id("finance-approvals"), card["ts"]) or {})
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{harness.bot_url}/metrics")).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("switchboard_runs_finished_total{")
        and 'status="cancelled"' in line
        and 'workflow="expense"' in line
    ]
    assert counted and counted[0].endswith(" 1.0")


async def test_reject_and_delegate_on_a_cancelled_run_answer_cancelled(harness: Harness) -> None:
    slack = harness.slack
    started = await slack.slash_command("alice", "general", "expense train to Paris")
    run_id = started.body.split("run `")[1].split("`")[0]
    card = await card_in(harness)
    stale = stale_copy(harness, card["ts"])
    await slack.slash_command("alice", "general", f"cancel {run_id}")
    for action in ("approval:reject", "approval:delegate"):
        await slack.click("carol", stale, action)
    told = await slack.wait_for(
        lambda: (
            (found := [m for m in slack.ephemerals("carol") if "cancelled" in m["text"]])
            and len(found) >= 2
            and found
        ),
        message="reject/delegate on a cancelled run were not answered",
    )
    assert len(told) == 2 and slack.open_views("carol") == []
    assert (await _gate(harness)).status == "cancelled"
