"""Who may decide on an approval: delegation never lets a requester pick her decider.

Finding 3: a requester who is also an approver could delegate her place on her own
four-eyes gate to a colleague, who then approved. These tests drive signed clicks and
modal submissions through the Slack emulator into the real bot, on SQLite and PostgreSQL.
Also here: a gate only the requester could decide says so at once, and refused clicks
write a bounded number of audit records however often they come.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import buttons, card_in, settled_card
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import approvals
from workflows.tables import AuditRow, DecisionRow, GateRow, RefusalRow, RunRow

CHANNEL = "finance-approvals"
GATED = """
name: expense
triggers: [{{command: expense}}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["{approvers}"]
      not_requester: true
      min_approvals: {min_approvals}
      timeout: 1h
      on_timeout: {on_timeout}
  - id: book
    set: {{booked: true}}
"""


def workflow_dir(
    folder: Path, approvers: str = "@finance", min_approvals: int = 1, on_timeout: str = "reject"
) -> Path:
    text = GATED.format(approvers=approvers, min_approvals=min_approvals, on_timeout=on_timeout)
    (folder / "expense.yaml").write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=workflow_dir(tmp_path)) as running:
        yield running


async def gate_of(harness: Harness) -> GateRow:
    async with harness.runtime.store.transaction() as session:
        return (await session.scalars(select(GateRow))).one()


async def audit_rows(harness: Harness, action: str) -> list[AuditRow]:
    async with harness.runtime.store.transaction() as session:
        rows = await session.scalars(
            select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq)
        )
        return list(rows.all())


def told(harness: Harness, user: str, words: str) -> bool:
    return any(words in message["text"] for message in harness.slack.ephemerals(user))


async def open_delegate_modal(harness: Harness, user: str, card: dict[str, Any]) -> str:
    await harness.slack.click(user, card["ts"], "approval:delegate", channel=CHANNEL)
    views = await harness.slack.wait_for(
        lambda: harness.slack.open_views(user), message=f"no delegate modal for {user}"
    )
    return str(views[-1]["id"])


async def submit_delegate(harness: Harness, user: str, view_id: str, to: str) -> str:
    """Submit the delegate modal; the error shown on it ('' when it closed)."""
    result = await harness.slack.submit_view(
        user,
        view_id,
        {"delegate": {"delegate": to}, "why": {"why": "Out of office this week"}},
    )
    if result.outcome == "closed":
        return ""
    assert result.outcome == "errors", result.outcome
    return " ".join(harness.slack.view_errors(view_id).values())


async def test_requester_cannot_delegate_her_own_four_eyes_gate(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense new monitor")
    card = await card_in(harness, CHANNEL)
    before = await gate_of(harness)
    assert slack.user_id("alice") in before.approvers, "alice is in @finance: the bypass setup"

    await slack.click("alice", card["ts"], "approval:delegate", channel=CHANNEL)
    await slack.wait_for(
        lambda: told(harness, "alice", "your own request"), message="alice was not told why"
    )
    await asyncio.sleep(0.3)  # a modal, if one were (wrongly) opened, shows up by now
    assert slack.open_views("alice") == [], "the requester must not get a delegate modal"
    after = await gate_of(harness)
    assert (after.status, after.approvers) == ("open", before.approvers)
    (denied,) = await audit_rows(harness, "approval.denied")
    assert denied.actor == slack.user_id("alice")
    assert denied.detail["decision"] == "delegate"
    assert await audit_rows(harness, "approval.delegated") == []


async def test_refused_delegation_targets_change_nothing_and_are_audited(
    harness: Harness,
) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense standing desk")
    card = await card_in(harness, CHANNEL)
    before = await gate_of(harness)
    view_id = await open_delegate_modal(harness, "carol", card)
    bot_user = slack.workspace.bot_user_id
    refused = {
        "carol": "yourself",
        "alice": "requester",
        "dave": "not an approver",
        bot_user: "not a person",
    }
    for target, words in refused.items():
        to = target if target == bot_user else slack.user_id(target)
        error = await submit_delegate(harness, "carol", view_id, to)
        assert words in error, f"delegating to {target}: {error!r}"
    after = await gate_of(harness)
    assert (after.status, after.approvers) == ("open", before.approvers)
    denied = await audit_rows(harness, "approval.denied")
    assert {row.detail.get("to") for row in denied} == {
        slack.user_id("carol"),
        slack.user_id("alice"),
        slack.user_id("dave"),
        bot_user,
    }

    # A delegation to another approver works and is audited: who, to whom, why.
    assert await submit_delegate(harness, "carol", view_id, slack.user_id("bob")) == ""
    (delegated,) = await audit_rows(harness, "approval.delegated")
    assert delegated.actor == slack.user_id("carol")
    assert delegated.detail["to"] == slack.user_id("bob")
    assert delegated.detail["reason_digest"]
    gate = await gate_of(harness)
    assert slack.user_id("carol") not in gate.approvers

    # The chain back (bob hands it back to carol, who gave her place away) is refused.
    back = await open_delegate_modal(harness, "bob", card)
    error = await submit_delegate(harness, "bob", back, slack.user_id("carol"))
    assert "not an approver" in error
    assert (await gate_of(harness)).approvers == gate.approvers


async def test_quorum_delegation_cannot_count_one_person_twice(
    database: Database, tmp_path: Path
) -> None:
    folder = workflow_dir(tmp_path, min_approvals=2)
    async with running_bot(database, workflows_dir=folder) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "expense team offsite")
        card = await card_in(harness, CHANNEL)
        # Eligible: bob and carol (alice asked). Two approvals need both of them.
        view_id = await open_delegate_modal(harness, "carol", card)
        error = await submit_delegate(harness, "carol", view_id, slack.user_id("bob"))
        assert "too few" in error
        await slack.close_view("carol", view_id)

        await slack.click("bob", card["ts"], "approval:approve", channel=CHANNEL)
        await slack.wait_for(lambda: told(harness, "bob", "1 of 2"))
        await slack.click("bob", card["ts"], "approval:delegate", channel=CHANNEL)
        await slack.wait_for(
            lambda: told(harness, "bob", "already decided"), message="bob not told"
        )
        gate = await gate_of(harness)
        assert gate.status == "open"
        assert {slack.user_id("bob"), slack.user_id("carol")} <= set(gate.approvers)
        await slack.click("carol", card["ts"], "approval:approve", channel=CHANNEL)
        await settled_card(harness, card["ts"], CHANNEL)
        async with harness.runtime.store.transaction() as session:
            deciders = set(await session.scalars(select(DecisionRow.user_id)))
        assert deciders == {slack.user_id("bob"), slack.user_id("carol")}


async def run_status(harness: Harness) -> RunRow | None:
    async with harness.runtime.store.transaction() as session:
        run = (await session.scalars(select(RunRow))).one()
    ended = ("succeeded", "failed", "rejected", "cancelled", "timed_out")
    return run if run.status in ended else None


@pytest.mark.parametrize("on_timeout", ["reject", "approve"])
async def test_lone_requester_approver_is_told_at_once_and_the_gate_fails(
    database: Database, tmp_path: Path, on_timeout: str
) -> None:
    folder = workflow_dir(tmp_path, approvers="@finance-leads", on_timeout=on_timeout)
    async with running_bot(database, workflows_dir=folder) as harness:
        slack = harness.slack
        await slack.slash_command("carol", "general", "expense conference")  # carol: the lead
        root = await harness.root_message("general", "started expense")
        thread = await harness.thread_of("general", root, replies=2, timeout=5)
        assert any("no one but the requester" in m["text"].lower() for m in thread), thread
        (record,) = await audit_rows(harness, "approval.no_eligible_approver")
        assert record.detail["approvers"] == [slack.user_id("carol")]
        # Not an hour of silence: the gate fails now, and never approves itself.
        run = await slack.wait_for(lambda: run_status(harness), timeout=5)
        assert run.status == "rejected"
        assert run.context["steps"]["review"]["outcome"] == "rejected"
        assert "book" not in run.context["steps"]


async def test_lone_requester_approver_escalates_at_once(
    database: Database, tmp_path: Path
) -> None:
    escalate = '{escalate_to: ["@finance"], timeout: 1h}'
    folder = workflow_dir(tmp_path, approvers="@finance-leads", on_timeout=escalate)
    async with running_bot(database, workflows_dir=folder) as harness:
        slack = harness.slack
        await slack.slash_command("carol", "general", "expense conference")
        card = await card_in(harness, CHANNEL)

        async def escalated() -> bool:
            return (await gate_of(harness)).escalation_level == 1

        await slack.wait_for(escalated, timeout=5, message="no escalation at once")
        assert await audit_rows(harness, "approval.no_eligible_approver")
        await slack.click("bob", card["ts"], "approval:approve", channel=CHANNEL)
        settled = await settled_card(harness, card["ts"], CHANNEL)
        assert buttons(settled) == []
        run = await slack.wait_for(lambda: run_status(harness), timeout=5)
        assert run.context["steps"]["review"]["decided_by"] == slack.user_id("bob")


@pytest.mark.timing  # asserts a time bound: runs in make test's serial phase
async def test_hammered_refusals_write_bounded_audit_and_every_click_is_answered(
    harness: Harness,
) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense espresso machine")
    card = await card_in(harness, CHANNEL)
    for _ in range(5):  # 50 clicks, ten at a time: hammering, within what 2 busy cores ack
        results = await asyncio.gather(
            *(
                slack.click("dave", card["ts"], "approval:approve", channel=CHANNEL)
                for _ in range(10)
            )
        )
        assert all(result.ok for result in results), [(r.status, r.elapsed_ms) for r in results]
    await slack.wait_for(
        lambda: len(slack.ephemerals("dave")) >= 50, message="not every click was answered"
    )
    assert all("not one of its approvers" in m["text"] for m in slack.ephemerals("dave"))
    (first,) = await audit_rows(harness, "approval.denied")
    assert first.detail["suppressed"] == 0
    gate = await gate_of(harness)
    async with harness.runtime.store.transaction() as session:
        (state,) = (
            await session.scalars(
                select(RefusalRow).where(
                    RefusalRow.gate_id == gate.id, RefusalRow.user_id == slack.user_id("dave")
                )
            )
        ).all()
    assert state.audited_at == first.created_at, "the window's start is durable state"

    # A minute on, the next refusal is recorded again, with the count it stands for.
    later = harness.runtime.deps.clock.now() + timedelta(seconds=61)
    result = await approvals.decide(
        harness.runtime.store,
        harness.runtime.deps.workflows,
        gate_id=gate.id,
        user_id=slack.user_id("dave"),
        decision="approve",
        reason=None,
        now=later,
    )
    assert result.status == "denied"
    rows = await audit_rows(harness, "approval.denied")
    assert [row.detail["suppressed"] for row in rows] == [0, 49]
    assert (await gate_of(harness)).status == "open"
