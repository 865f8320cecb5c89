"""Issue 16 item 2: a chain ends in its final action. ``then: reject`` settles the gate
rejected and ends the run ``rejected``; ``then: approve`` settles it approved and the run
goes on. (``then: {goto}`` and level-by-level escalation: tests/approvals/
test_escalation_chain.py.) Each is audited once, and the card loses its buttons."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import buttons, card_in
from tests.approvals.test_escalation_chain import SEED, actions, escalations
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import GateRow, RunRow

CHAIN = """
name: spend
triggers: [{{command: spend}}]
steps:
  - id: review
    approve:
      channel: "#approvals"
      approvers: [U0MANAGER]
      timeout: 1s
      escalation:
        levels: [{{approvers: [U0DIRECTOR], timeout: 1s}}]
        then: {then}
  - id: book
    set: {{booked: true}}
"""


@pytest.mark.parametrize(
    ("then", "gate_status", "run_status"),
    [("reject", "rejected", "rejected"), ("approve", "approved", "succeeded")],
)
async def test_the_final_action_settles_the_gate_and_the_run(
    database: Database, tmp_path: Path, then: str, gate_status: str, run_status: str
) -> None:
    (tmp_path / "spend.yaml").write_text(textwrap.dedent(CHAIN.format(then=then)))
    async with running_bot(database, workflows_dir=tmp_path, seed=SEED) as harness:
        slack = harness.slack
        await slack.slash_command("req", "general", "spend 9k on laptops")
        card = await card_in(harness, "approvals")

        async def ended() -> RunRow | None:
            async with harness.runtime.store.read() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.finished_at is not None else None

        run = await slack.wait_for(ended, timeout=15, message="the chain never ended the run")
        assert run.status == run_status
        assert ("book" in run.context["steps"]) is (then == "approve")
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        assert (gate.status, gate.escalation_level) == (gate_status, 1)
        rows = await actions(harness)
        assert escalations(rows) == [(1, ["U0DIRECTOR"])]
        resolved = [r.detail["outcome"] for r in rows if r.action == "approval.resolved"]
        assert resolved == [gate_status]

        def settled() -> bool:
            message = slack.message(slack.channel_id("approvals"), card["ts"])
            return message is not None and not buttons(message)

        await slack.wait_for(settled, message="the card kept its buttons")
