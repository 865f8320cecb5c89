"""A custom outcome may ask the decider why (``reason: true``), as Reject always does.

Clicking such a button decides nothing yet: it opens the reason modal for that
outcome; an empty reason is refused under the field; the submitted reason settles
the gate with that outcome, shows on the card and reaches the run as
``steps.<id>.reason``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select

from tests.approvals.test_approvals_end_to_end import buttons, card_in, settled_card
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows import approvals
from workflows.tables import GateRow, RunRow

CHANGES = """
name: changes
triggers: [{command: changes}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance-leads"]
      title: "Spend: {{ input.text }}"
      outcomes:
        - {id: changes, label: "Request changes", done: "Changes requested", reason: true}
      next: {changes: noted}
  - id: booked
    set: {ok: true}
  - id: noted
    set: {why: "{{ steps.review.reason }}"}
"""


async def test_a_custom_outcome_with_reason_asks_why_before_it_decides(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "changes.yaml").write_text(textwrap.dedent(CHANGES))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "changes new monitors")
        card = await card_in(harness)
        assert "approval:changes" in buttons(card)
        await slack.click("carol", card["ts"], "approval:changes", channel="finance-approvals")
        (modal,) = await slack.wait_for(lambda: slack.open_views("carol"), message="no modal")
        assert modal["callback_id"] == "approval_reject"
        assert "Request changes" in str(modal["blocks"])
        async with harness.runtime.store.read() as session:
            assert (await session.scalars(select(GateRow))).one().status == "open"

        short = await slack.submit_view("carol", modal["id"], {"reason": "no"})
        assert short.outcome == "errors"
        done = await slack.submit_view("carol", modal["id"], {"reason": "March numbers are off"})
        assert done.outcome == "closed"

        settled = await settled_card(harness, card["ts"])
        assert "*Changes requested* by <@" in str(settled["blocks"])
        assert "March numbers are off" in str(settled["blocks"])

        async def finished() -> RunRow | None:
            async with harness.runtime.store.read() as session:
                run = (await session.scalars(select(RunRow))).one()
            return run if run.status not in ("running", "waiting", "queued") else None

        run = await slack.wait_for(finished, message="run did not finish")
        assert run.context["steps"]["review"]["outcome"] == "changes"
        assert run.context["steps"]["noted"] == {"why": "March numbers are off"}
        assert "booked" not in run.context["steps"]
        # The thread says it in the outcome's words, not its id.
        root = await harness.root_message("general", "changes")
        said = " ".join(m.get("text", "") for m in slack.thread("general", root["ts"]))
        assert "Changes requested by <@" in said, said
        assert "changes by <@" not in said


async def test_such_an_outcome_without_a_reason_is_refused_where_decisions_are_made(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "changes.yaml").write_text(textwrap.dedent(CHANGES))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "changes chairs")
        await card_in(harness)
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        result = await approvals.decide(
            harness.runtime.store,
            harness.runtime.deps.workflows,
            gate_id=gate.id,
            user_id=slack.user_id("carol"),
            decision="changes",
            reason="  ",
            now=harness.runtime.deps.clock.now(),
        )
        assert (result.status, result.message) == (
            "denied",
            "This choice needs a reason: click its button on the card.",
        )
        async with harness.runtime.store.read() as session:
            assert (await session.get(GateRow, gate.id)).status == "open"
