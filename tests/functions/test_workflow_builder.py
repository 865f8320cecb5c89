"""Switchboard as a Workflow Builder step, end to end through the emulator's Workflow Builder.

A workflow built in the emulator (a link trigger, our "Run a Switchboard workflow" step, then
Slack's own "Send a message" step that reads our step's outputs) calls the bot over the
Events API (``function_executed``); the run it starts waits for a person's approval, across a
restart of the bot, and its ending completes the step (``functions.completeSuccess`` /
``completeError``) exactly once.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from connectors.secrets import Scrubber
from sandbox.slack.functions import WorkflowBuilder
from tests.functions.support import card_in, completions, expense_flow, function_rows, recorded
from tests.support.harness import Harness
from workflows.tables import AuditRow, RequestRow, RunRow


async def test_the_step_continues_with_its_outputs_after_an_approval_across_a_restart(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    slack = harness.slack
    flow = await builder.start(expense_flow(builder), user="alice")
    card = await card_in(harness)
    assert flow.status == "running" and completions(harness) == []
    (row,) = await function_rows(harness)
    assert row.token == flow.executions[0].token and row.completed_at is None

    await harness.restart()  # nothing waits in memory: the approval is a gate row
    await slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
    await builder.finished(flow)

    assert flow.status == "completed", flow.error
    (outputs, _message) = flow.outputs
    async with harness.runtime.store.read() as session:
        run = (await session.scalars(select(RunRow))).one()
    assert outputs["outcome"] == "succeeded" and outputs["run_id"] == run.id
    assert outputs["decided_by"] == slack.user_id("carol")
    assert json.loads(outputs["outputs"])["book"] == {"booked": "team dinner"}
    posted = [m["text"] for m in slack.messages("general")]
    assert f"Expense run {run.id}: succeeded" in posted  # the next step read our outputs
    row = await recorded(harness)
    assert (row.completion, row.token) == ("success", None)  # the token is forgotten
    assert len(completions(harness)) == 1


async def test_a_rejected_run_completes_the_step_with_an_error(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    slack = harness.slack
    flow = await builder.start(expense_flow(builder), user="alice")
    card = await card_in(harness)
    await slack.click("carol", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": "Over budget"}})
    await builder.finished(flow)
    assert flow.status == "failed"
    assert flow.error is not None and "Over budget" in flow.error
    assert "rejected by carol" in flow.error.lower(), flow.error  # a name, never an id
    assert slack.user_id("carol") not in flow.error
    assert len(flow.outputs) == 0, "the next step never ran"
    assert [c.method for c in completions(harness)] == ["functions.completeError"]


async def test_a_failed_run_completes_the_step_with_an_error(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder, "broken"), user="alice")
    await builder.finished(flow)
    assert flow.status == "failed"
    assert flow.error is not None and "the ledger is closed for team dinner" in flow.error
    assert "failed at step boom" in flow.error


async def test_an_unknown_workflow_fails_the_step_at_once(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder, "nope"), user="alice")
    await builder.finished(flow)
    assert flow.status == "failed" and flow.error is not None
    assert "no workflow named 'nope'" in flow.error
    assert await function_rows(harness) == []


async def test_a_redelivered_event_starts_one_run(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder), user="alice")
    await card_in(harness)
    await builder.redeliver(flow.executions[0])
    await builder.redeliver(flow.executions[0])
    async with harness.runtime.store.read() as session:
        runs = list(await session.scalars(select(RunRow)))
    assert len(runs) == 1 and len(await function_rows(harness)) == 1
    assert len(harness.slack.messages("finance-approvals")) == 1


async def test_the_steps_token_is_kept_only_on_its_row_and_scrubbed_elsewhere(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder), user="alice")
    await card_in(harness)
    token = flow.executions[0].token
    async with harness.runtime.store.read() as session:
        kept = [
            json.dumps(row, default=str)
            for model in (RunRow, RequestRow, AuditRow)
            for row in (await session.execute(select(model.__table__))).all()
        ]
    assert kept and not any(token in text for text in kept)
    assert token not in Scrubber().text(f"a log line with {token}")


async def test_a_cancelled_run_completes_the_step_with_an_error(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder), user="alice")
    await card_in(harness)
    (row,) = await function_rows(harness)
    await harness.slack.slash_command("alice", "general", f"cancel {row.run_id}")
    await builder.finished(flow)
    assert flow.status == "failed" and flow.error is not None
    assert f"was cancelled (run {row.run_id})" in flow.error


async def test_a_malformed_step_event_is_answered_and_starts_nothing(
    harness: Harness, builder: WorkflowBuilder
) -> None:
    flow = await builder.start(expense_flow(builder, "nope"), user="alice")
    await builder.finished(flow)
    event = dict(flow.executions[0].event) | {"inputs": ["not", "an", "object"]}
    result = await harness.slack.send_event(event)
    assert result.status == 200
    assert await function_rows(harness) == []
