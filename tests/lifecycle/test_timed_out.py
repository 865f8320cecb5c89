"""An approval nobody decides, even after escalation, ends its run ``timed_out``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import card_in, settled_card
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import GateRow, RunRow

LAPSING = """
name: lapsing
triggers: [{command: lapsing}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      timeout: 1s
      on_timeout: {escalate_to: ["#finance-approvals"], timeout: 1s}
  - id: after
    set: {done: true}
"""


async def test_an_undecided_escalated_approval_ends_the_run_timed_out(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "lapsing.yaml").write_text(LAPSING)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "lapsing anything")
        card = await card_in(harness)
        settled = await settled_card(harness, card["ts"])
        assert "Timed_out" in str(settled["blocks"]) or "Timed out" in str(settled["blocks"])

        async def ended() -> RunRow | None:
            async with harness.runtime.store.read() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.finished_at is not None else None

        run = await slack.wait_for(ended, timeout=10, message="the run did not end")
        assert run.status == "timed_out"
        assert "after" not in run.context["steps"]
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        assert gate.status == "timed_out"
        root = await harness.root_message("general", "started lapsing")
        await slack.wait_for(
            lambda: any("was timed out" in m["text"] for m in slack.thread("general", root["ts"])),
            message="the thread was not told the request timed out",
        )
