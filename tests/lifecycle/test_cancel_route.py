"""Cancelling a run waiting on a route assignment closes it and its SLA timers never fire."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.routing.test_routing_end_to_end import actions, first_message, thread_says, write
from tests.support.harness import Harness, running_bot
from tests.support.routing import SEED
from tests.support.stores import Database
from workflows.tables import AssignmentRow, JobRow, RunRow


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    folder = write(tmp_path, first_response="5s")  # remind at 4 s, breach at 5 s
    async with running_bot(database, workflows_dir=folder, seed=SEED) as running:
        yield running


async def test_cancel_closes_the_assignment_and_its_sla_timers_never_fire(
    harness: Harness,
) -> None:
    slack = harness.slack
    request = await slack.user_posts("alice", "requests", "I was charged twice for my invoice")
    card = await first_message(harness, "billing")
    await thread_says(harness, "requests", request["ts"], "routed to billing")
    # The card as a client that has not yet received the update still shows it.
    shown = slack.workspace.find_message(slack.channel_id("billing"), card["ts"])
    stale = copy.deepcopy(shown)
    assert stale is not None
    async with harness.runtime.store.read() as session:
        run = (await session.scalars(select(RunRow))).one()
    cancel = await slack.slash_command("alice", "requests", f"cancel {run.id}")
    assert "Cancelled run" in cancel.body

    async with harness.runtime.store.read() as session:
        assignment = (await session.scalars(select(AssignmentRow))).one()
        timers = list(
            await session.scalars(
                select(JobRow).where(JobRow.run_id == run.id, JobRow.kind == "timer")
            )
        )
    assert assignment.status == "cancelled"
    assert timers and {t.status for t in timers} == {"cancelled"}

    def card_closed() -> bool:
        message = slack.message(slack.channel_id("billing"), card["ts"]) or {}
        return not actions(message) and "Cancelled" in str(message.get("blocks"))

    await slack.wait_for(card_closed, message="the owner card still has its buttons")
    await asyncio.sleep(6)  # past both SLA timers (4 s remind, 5 s breach)
    notices = [m for m in slack.thread("requests", request["ts"]) if "SLA" in m["text"]]
    assert notices == [] and slack.messages("leads") == []

    await slack.click("carol", stale, "route:claim")
    told = await slack.wait_for(
        lambda: [m for m in slack.ephemerals("carol") if "cancelled" in m["text"]],
        message="a claim on a cancelled request was not answered",
    )
    assert f"<@{slack.user_id('alice')}>" in told[0]["text"]
    async with harness.runtime.store.read() as session:
        assignment = (await session.scalars(select(AssignmentRow))).one()
    assert assignment.status == "cancelled" and assignment.claimed_by is None
