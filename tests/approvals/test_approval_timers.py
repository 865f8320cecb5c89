"""Reminders, timeouts and escalation: durable timers that survive a restart while waiting."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import buttons, card_in, settled_card
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows import audit
from workflows.tables import AuditRow, GateRow, RunRow

ESCALATING = """
name: urgent
triggers: [{command: urgent}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      title: "Urgent: {{ input.text }}"
      remind_every: 1s
      timeout: 2s
      on_timeout: {escalate_to: ["#finance-approvals"], timeout: 30s}
  - id: after
    set: {done: true}
"""

REJECTING = """
name: lapse
triggers: [{command: lapse}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      timeout: 2s
      on_timeout: reject
  - id: after
    set: {done: true}
"""


async def test_reminds_then_escalates_and_the_new_approver_decides_across_a_restart(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "urgent.yaml").write_text(textwrap.dedent(ESCALATING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "urgent wire transfer")
        card = await card_in(harness)
        carol = slack.user_id("carol")
        await harness.restart()  # the wait is rows and due times, not a coroutine

        def reminded() -> bool:
            dm = slack.messages(slack.dm_channel("carol").id)
            return any("Reminder" in message["text"] for message in dm)

        await slack.wait_for(reminded, timeout=10, message="carol got no reminder DM")

        async def escalated() -> bool:
            async with harness.runtime.store.transaction() as session:
                gate = (await session.scalars(select(GateRow))).one()
            return gate.escalation_level == 1

        await slack.wait_for(escalated, timeout=10, message="no escalation")
        await harness.restart()
        escalated_card = slack.message(slack.channel_id("finance-approvals"), card["ts"])
        assert escalated_card is not None
        assert "Escalated" in str(escalated_card["blocks"])
        assert buttons(escalated_card), "still open after escalation"
        assert carol in str(escalated_card["blocks"])

        # alice is a member of #finance-approvals, so escalation made her an approver.
        await slack.click("alice", card["ts"], "approval:approve", channel="finance-approvals")
        await settled_card(harness, card["ts"])

        async def finished() -> RunRow | None:
            async with harness.runtime.store.transaction() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.status == "succeeded" else None

        run = await slack.wait_for(finished, timeout=10)
        assert run.context["steps"]["review"]["decided_by"] == slack.user_id("alice")
        assert run.context["steps"]["after"] == {"done": True}
        async with harness.runtime.store.transaction() as session:
            actions = list(await session.scalars(select(AuditRow.action)))
        assert {"approval.reminded", "approval.escalated", "approval.decision"} <= set(actions)
        assert (await audit.verify(harness.runtime.store)).ok


async def test_timeout_rejects_across_a_restart(database: Database, tmp_path: Path) -> None:
    (tmp_path / "lapse.yaml").write_text(textwrap.dedent(REJECTING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "lapse anything")
        card = await card_in(harness)
        await harness.restart()
        settled = await settled_card(harness, card["ts"])
        assert "Rejected" in str(settled["blocks"]) and "timeout" in str(settled["blocks"])

        async def finished() -> RunRow | None:
            async with harness.runtime.store.transaction() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.status == "rejected" else None

        run = await slack.wait_for(finished, timeout=10)
        assert run.context["steps"]["review"]["outcome"] == "rejected"
        assert "after" not in run.context["steps"]
