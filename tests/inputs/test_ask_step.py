"""The ``ask`` step end to end: a question with a button, its form, a durable wait."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import audit
from workflows.tables import AuditRow, GateRow, RunRow

CODING = """
name: coding
triggers: [{command: coding}]
steps:
  - id: cost
    ask:
      people: ["#finance-approvals"]
      title: "Cost centre for {{ input.text }}"
      text: "Which cost centre pays for *{{ input.text }}*?"
      fields:
        - {id: cost_centre, type: select, required: true, options: [CC-100, CC-200]}
        - {id: split, type: money, currency: EUR, label: "Amount on it"}
      remind_every: 1s
      timeout: 1h
  - id: book
    set:
      cc: "{{ steps.cost.answer.cost_centre }}"
      half: "{{ steps.cost.answer.split / 2 }}"
      by: "{{ steps.cost.answered_by }}"
"""

LAPSING = """
name: lapse
triggers: [{command: lapse}]
steps:
  - id: cost
    ask:
      people: [carol]
      channel: "#finance-approvals"
      fields: [{id: cost_centre, required: true}]
      timeout: 1s
  - id: book
    set: {done: true}
"""


def ask_buttons(message: dict[str, Any]) -> list[str]:
    return [
        el["action_id"]
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for el in block["elements"]
    ]


async def question_in(harness: Harness) -> dict[str, Any]:
    root = await harness.root_message("general", "started coding")

    def card() -> dict[str, Any] | None:
        thread = harness.slack.thread(harness.slack.channel_id("general"), root["ts"])
        return next((m for m in thread if "ask:open" in ask_buttons(m)), None)

    return await harness.slack.wait_for(card, message="no question in the thread")


async def _run(harness: Harness) -> RunRow:
    async with harness.runtime.store.read() as session:
        return (await session.scalars(select(RunRow))).one()


async def test_a_question_is_answered_across_a_restart_by_someone_asked(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "coding.yaml").write_text(textwrap.dedent(CODING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "coding team offsite")
        card = await question_in(harness)
        assert "Which cost centre pays for *team offsite*?" in str(card["blocks"])

        await harness.restart()  # the wait is a gate row and timers, not a coroutine
        reminded = lambda: any(  # noqa: E731
            "Reminder" in m["text"] for m in slack.messages(slack.dm_channel("carol").id)
        )
        await slack.wait_for(reminded, timeout=8, message="carol got no reminder DM")

        general = slack.channel_id("general")
        await slack.click("bob", card["ts"], "ask:open", channel="general")
        told = await slack.wait_for(lambda: slack.ephemerals("bob"), message="bob not told")
        assert "not one of the people asked" in told[-1]["text"]
        assert slack.open_views("bob") == []

        await slack.click("carol", card["ts"], "ask:open", channel="general")
        (form,) = await slack.wait_for(lambda: slack.open_views("carol"), message="no form")
        assert form["callback_id"] == "ask_form"
        bad = await slack.submit_view("carol", form["id"], {"cost_centre": "CC-200", "split": "x"})
        assert bad.outcome == "errors"
        assert slack.view_errors(form["id"]) == {"split": "Not an amount (e.g. 1,250.00 EUR)."}
        await slack.click("alice", card["ts"], "ask:open", channel="general")
        (late,) = await slack.wait_for(lambda: slack.open_views("alice"), message="no form")
        good = await slack.submit_view("carol", form["id"], {"split": "300"})
        assert good.outcome == "closed"
        # Whoever submits second (alice's form was open meanwhile) is told who answered.
        second = await slack.submit_view("alice", late["id"], {"cost_centre": "CC-100"})
        assert second.outcome == "errors"
        assert "Already answered by <@" in slack.view_errors(late["id"])["cost_centre"]

        async def done() -> bool:
            return (await _run(harness)).status == "succeeded"

        await slack.wait_for(done, timeout=8, message="run did not finish")
        run = await _run(harness)
        carol = slack.user_id("carol")
        out = run.context["steps"]["cost"]
        assert out["status"] == "answered" and out["answered_by"] == carol
        assert out["answer"] == {
            "cost_centre": "CC-200",
            "split": {"amount": 300.0, "currency": "EUR"},
        }
        assert out["answered_at"]
        assert run.context["steps"]["book"] == {
            "cc": "CC-200",
            "half": {"amount": 150.0, "currency": "EUR"},
            "by": carol,
        }
        settled = slack.message(general, card["ts"])
        assert settled is not None and ask_buttons(settled) == []
        assert "Answered by" in str(settled["blocks"]) and "CC-200" in str(settled["blocks"])

        async with harness.runtime.store.read() as session:
            records = (
                await session.scalars(select(AuditRow).where(AuditRow.action == "ask.answered"))
            ).all()
        (record,) = records
        assert record.actor == carol
        assert record.detail["fields"] == ["cost_centre", "split"]
        assert "CC-200" not in str(record.detail)  # a digest, never the values
        assert (await audit.verify(harness.runtime.store)).ok


async def test_an_unanswered_question_times_out_and_ends_the_run(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "lapse.yaml").write_text(textwrap.dedent(LAPSING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "lapse")

        async def ended() -> bool:
            async with harness.runtime.store.read() as session:
                run = (await session.scalars(select(RunRow))).first()
            return run is not None and run.status == "timed_out"

        await slack.wait_for(ended, timeout=8, message="the run did not time out")
        run = await _run(harness)
        assert run.context["steps"]["cost"]["status"] == "timed_out"
        assert "book" not in run.context["steps"]
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        assert gate.status == "timed_out" and gate.decided_by == "timeout"
        (card,) = slack.messages("finance-approvals")
        await slack.wait_for(
            lambda: (
                not ask_buttons(
                    slack.message(slack.channel_id("finance-approvals"), card["ts"]) or {}
                )
            ),
            message="card kept its button",
        )


async def test_cancel_closes_the_question(database: Database, tmp_path: Path) -> None:
    (tmp_path / "coding.yaml").write_text(textwrap.dedent(CODING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "coding offsite")
        card = await question_in(harness)
        await slack.click("carol", card["ts"], "ask:open", channel="general")
        (form,) = await slack.wait_for(lambda: slack.open_views("carol"), message="no form")

        async def waiting() -> RunRow | None:
            run = await _run(harness)
            return run if run.status == "waiting" else None

        run = await slack.wait_for(waiting, message="the run is not waiting on the question")
        await slack.slash_command("alice", "general", f"cancel {run.id}")
        async with harness.runtime.store.read() as session:
            gate = (await session.scalars(select(GateRow))).one()
        assert gate.status == "cancelled"
        general = slack.channel_id("general")

        def closed() -> dict[str, Any] | None:
            message = slack.message(general, card["ts"])
            return message if message and not ask_buttons(message) else None

        updated = await slack.wait_for(closed, timeout=10, message="the question kept its button")
        assert "Closed (cancelled)" in str(updated["blocks"])
        # The form carol opened before the cancel can no longer answer.
        late = await slack.submit_view("carol", form["id"], {"cost_centre": "CC-100"})
        assert late.outcome == "errors"
        assert "cancelled" in slack.view_errors(form["id"])["cost_centre"]
        assert "answer" not in (await _run(harness)).context["steps"].get("cost", {})


async def test_app_home_offers_an_answer_button_for_a_question(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "coding.yaml").write_text(textwrap.dedent(CODING))
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "coding offsite")
        await question_in(harness)
        await slack.open_home("carol")
        home = await slack.wait_for(lambda: slack.home_view("carol"), message="no home")
        buttons = [
            el["action_id"]
            for b in home["blocks"]
            if b["type"] == "actions"
            for el in b["elements"]
        ]
        assert buttons == ["ask:open"]
        await slack.click("carol", home["id"], "ask:open")
        (form,) = await slack.wait_for(lambda: slack.open_views("carol"), message="no form")
        assert form["callback_id"] == "ask_form"
        await slack.submit_view("carol", form["id"], {"cost_centre": "CC-100"})

        def emptied() -> bool:
            view = slack.home_view("carol")
            return bool(view) and "Nothing is waiting for you" in str(view["blocks"])

        await slack.wait_for(emptied, timeout=8, message="carol's Home still lists the question")
