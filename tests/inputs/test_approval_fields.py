"""An approval that asks for fields on Approve (a cost centre), through the Slack emulator."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import buttons, card_in, settled_card
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows import approvals
from workflows.tables import GateRow, RunRow

CODED = """
name: coded
triggers: [{command: coded}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      title: "Spend: {{ input.text }}"
      approve_fields:
        - {id: cost_centre, type: select, required: true, options: [CC-100, CC-200]}
        - {id: budget, type: money, currency: EUR}
  - id: book
    set: {cc: "{{ steps.review.answer.cost_centre }}"}
"""


async def test_approve_asks_for_the_required_field_and_the_run_gets_it(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "coded.yaml").write_text(textwrap.dedent(CODED))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "coded new monitors")
        card = await card_in(harness)
        await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
        (form,) = await slack.wait_for(lambda: slack.open_views("carol"), message="no form")
        assert form["callback_id"] == "approval_approve"
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        assert gate.status == "open"  # the click alone decided nothing

        bad = await slack.submit_view("carol", form["id"], {"cost_centre": "CC-100", "budget": "x"})
        assert bad.outcome == "errors"
        assert slack.view_errors(form["id"]) == {"budget": "Not an amount (e.g. 1,250.00 EUR)."}
        good = await slack.submit_view("carol", form["id"], {"budget": "900"})
        assert good.outcome == "closed"
        settled = await settled_card(harness, card["ts"])
        assert buttons(settled) == []

        async def done() -> RunRow | None:
            async with harness.runtime.store.read() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.status == "succeeded" else None

        run = await slack.wait_for(done, timeout=8, message="run did not finish")
        review = run.context["steps"]["review"]
        assert review["outcome"] == "approved"
        assert review["answer"] == {
            "cost_centre": "CC-100",
            "budget": {"amount": 900.0, "currency": "EUR"},
        }
        assert run.context["steps"]["book"] == {"cc": "CC-100"}


async def test_a_bare_approve_of_such_an_approval_is_refused(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "coded.yaml").write_text(textwrap.dedent(CODED))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "coded chairs")
        await card_in(harness)
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        # What a crafted block_actions "approve" (no form) would reach.
        result = await approvals.decide(
            harness.runtime.store,
            harness.runtime.workflows,
            gate_id=gate.id,
            user_id=slack.user_id("carol"),
            decision="approve",
            reason=None,
            now=harness.runtime.engine.clock.now(),
        )
        assert result.status == "denied" and "needs its form" in result.message
