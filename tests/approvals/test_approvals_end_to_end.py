"""Approval gates end to end through the Slack emulator: signed clicks, cards, threads."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import audit
from workflows.tables import DecisionRow, GateRow, RunRow

EXPENSE = """
name: expense
title: Expense approval
triggers:
  - command: expense
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      not_requester: true
      min_approvals: {min_approvals}
      title: "Expense: {{{{ input.text }}}}"
      summary: "{{{{ input.user }}}} asks for {{{{ input.text }}}}"
      fields: {{Request: "{{{{ input.text }}}}"}}
      outcomes: [{{id: changes, label: "Request changes"}}]
  - id: book
    set: {{booked: true}}
"""


def write_workflow(folder: Path, min_approvals: int = 1) -> Path:
    (folder / "expense.yaml").write_text(
        textwrap.dedent(EXPENSE.format(min_approvals=min_approvals))
    )
    return folder


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


async def card_in(harness: Harness, channel: str = "finance-approvals") -> dict[str, Any]:
    return await harness.slack.wait_for(
        lambda: next(iter(harness.slack.messages(channel)), None), message="no approval card"
    )


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def settled_card(
    harness: Harness, ts: str, channel: str = "finance-approvals"
) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        message = harness.slack.message(harness.slack.channel_id(channel), ts)
        return message if message and not buttons(message) else None

    return await harness.slack.wait_for(settled, message="the card was not updated")


async def run_of(harness: Harness) -> RunRow:
    async with harness.runtime.store.transaction() as session:
        run = (await session.scalars(select(RunRow))).one()
    return run


async def test_approve_completes_the_run_and_updates_card_and_thread(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense team dinner 120 EUR")
    card = await card_in(harness)
    assert buttons(card) == [
        "approval:approve",
        "approval:reject",
        "approval:changes",
        "approval:delegate",
    ]
    assert "Expense: team dinner 120 EUR" in card["text"]

    result = await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
    assert result.ok
    settled = await settled_card(harness, card["ts"])
    text = str(settled["blocks"])
    assert "Approved" in text and f"<@{slack.user_id('carol')}>" in text

    root = await harness.root_message("general", "started expense")
    thread = await harness.thread_of("general", root, replies=2)  # run card, the decision
    assert any(m["text"].startswith("review: approved by") for m in thread)
    await slack.wait_for(lambda: _status(harness, "succeeded"), message="run did not finish")
    run = await run_of(harness)
    assert run.context["steps"]["review"]["outcome"] == "approved"
    assert run.context["steps"]["book"] == {"booked": True}
    assert (await audit.verify(harness.runtime.store)).ok


async def test_reject_asks_for_a_reason_and_ends_the_run(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense new laptop")
    card = await card_in(harness)
    await slack.click("carol", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    empty = await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": "  "}})
    assert empty.outcome == "errors"
    assert "reason" in slack.view_errors(views[-1]["id"])
    done = await slack.submit_view(
        "carol", views[-1]["id"], {"reason": {"reason": "Over the quarterly budget"}}
    )
    assert done.outcome == "closed"
    settled = await settled_card(harness, card["ts"])
    assert "Over the quarterly budget" in str(settled["blocks"])
    await slack.wait_for(lambda: _status(harness, "rejected"))
    run = await run_of(harness)
    assert run.context["steps"]["review"]["outcome"] == "rejected"
    assert "book" not in run.context["steps"], "a rejection ends the run by default"


async def test_wrong_people_are_refused_and_nothing_changes(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense conference ticket")
    card = await card_in(harness)

    await slack.click("dave", card["ts"], "approval:approve", channel="finance-approvals")
    await slack.click("alice", card["ts"], "approval:approve", channel="finance-approvals")

    def told(user: str, words: str) -> bool:
        return any(words in message["text"] for message in slack.ephemerals(user))

    await slack.wait_for(lambda: told("dave", "not one of its approvers"), message="dave not told")
    await slack.wait_for(lambda: told("alice", "four-eyes"), message="alice not told")
    assert buttons(slack.message(slack.channel_id("finance-approvals"), card["ts"]) or {})
    async with harness.runtime.store.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(DecisionRow)) == 0
        gate = (await session.scalars(select(GateRow))).one()
        assert gate.status == "open"

    # Two approvers click at once: one decides, the other is told who beat them to it.
    await asyncio.gather(
        slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals"),
        slack.click("bob", card["ts"], "approval:approve", channel="finance-approvals"),
    )
    await settled_card(harness, card["ts"])
    async with harness.runtime.store.transaction() as session:
        (decision,) = (await session.scalars(select(DecisionRow))).all()
    loser = "bob" if decision.user_id == slack.user_id("carol") else "carol"
    await slack.wait_for(
        lambda: told(loser, f"Already approved by <@{decision.user_id}>"), message="loser not told"
    )
    trail = [line async for line in audit.export(harness.runtime.store)]
    assert sum('"approval.denied"' in line for line in trail) == 3


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
async def test_fifty_concurrent_clicks_make_one_outcome_and_one_card_update(
    database: Database, tmp_path: Path
) -> None:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "expense offsite")
        card = await card_in(harness)
        clickers = ["carol", "bob"] * 25
        results = await asyncio.gather(
            *(
                slack.click(user, card["ts"], "approval:approve", channel="finance-approvals")
                for user in clickers
            )
        )
        slow = [(r.status, round(r.elapsed_ms)) for r in results if r.status != 200]
        assert not slow, f"clicks not answered in time: {slow}"
        await settled_card(harness, card["ts"])
        await slack.wait_for(lambda: _status(harness, "succeeded"))
        await asyncio.sleep(0.3)  # let any stray (wrong) second update show up
        async with harness.runtime.store.transaction() as session:
            decisions = (await session.scalars(select(DecisionRow))).all()
            gates = (await session.scalars(select(GateRow))).all()
        assert len(gates) == 1
        assert len(decisions) == 1, "the first approval settles the gate; later clicks are refused"
        updates = [
            call for call in slack.api_calls("chat.update") if call.args.get("ts") == card["ts"]
        ]
        assert len(updates) == 1


async def test_an_approver_can_delegate_and_the_delegate_decides(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense printer")
    card = await card_in(harness)
    await slack.click("carol", card["ts"], "approval:delegate", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no delegate modal")
    no_why = await slack.submit_view(
        "carol", views[-1]["id"], {"delegate": slack.user_id("bob"), "why": " "}
    )
    assert no_why.outcome == "errors" and "why" in slack.view_errors(views[-1]["id"])
    done = await slack.submit_view(
        "carol", views[-1]["id"], {"delegate": slack.user_id("bob"), "why": "On leave"}
    )
    assert done.outcome == "closed"

    def carol_gone() -> bool:
        message = slack.message(slack.channel_id("finance-approvals"), card["ts"]) or {}
        return f"<@{slack.user_id('carol')}>" not in str(message.get("blocks"))

    await slack.wait_for(carol_gone, message="the card still lists the delegator")
    root = await harness.root_message("general", "started expense")
    thread = await harness.thread_of("general", root, replies=2)
    assert any("delegated to" in m["text"] and "On leave" in m["text"] for m in thread)
    await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
    await slack.click("bob", card["ts"], "approval:approve", channel="finance-approvals")
    settled = await settled_card(harness, card["ts"])
    assert f"<@{slack.user_id('bob')}>" in str(settled["blocks"])
    trail = [line async for line in audit.export(harness.runtime.store)]
    assert any('"approval.delegated"' in line for line in trail)


async def test_quorum_needs_distinct_approvers(database: Database, tmp_path: Path) -> None:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path, 2)) as harness:
        slack = harness.slack
        await slack.slash_command("dave", "general", "expense team offsite")
        card = await card_in(harness)
        await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
        await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
        told = await slack.wait_for(
            lambda: len(slack.ephemerals("carol")) >= 2 and slack.ephemerals("carol")
        )
        assert "1 of 2" in told[0]["text"]
        assert "already decided" in told[1]["text"]
        await slack.click("bob", card["ts"], "approval:approve", channel="finance-approvals")
        await settled_card(harness, card["ts"])


async def _status(harness: Harness, status: str) -> bool:
    async with harness.runtime.store.transaction() as session:
        runs = (await session.scalars(select(RunRow))).all()
    return bool(runs) and all(run.status == status for run in runs)
