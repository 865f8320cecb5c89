""" "Ask for approval" on its own in a Workflow Builder workflow, and clicks inside the step.

The step's card goes to the approver (a DM); the decision is the step's output, so the next
step can branch on it. A click that Slack sends in the step's context (``function_data`` and
the execution's ``bot_access_token``) opens its modal with that token, as Slack requires;
the app's own token is refused for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack.functions import FunctionStep, MessageStep, WorkflowBuilder
from tests.functions.support import completions, manifest
from tests.support.harness import BOT_TOKEN, Harness


def approval_flow(builder: WorkflowBuilder, approver: str) -> Any:
    inputs = {"approvers": [approver], "text": "A new laptop", "requester": "{{trigger.user}}"}
    return builder.workflow(
        "Laptops",
        [
            FunctionStep("ask_for_approval", inputs),
            MessageStep("#general", "Laptop {{steps.0.outcome}} by {{steps.0.decided_by}}"),
        ],
    )


async def dm_card(harness: Harness, user: str) -> dict[str, Any]:
    channel = harness.slack.dm_channel(user).id
    return await harness.slack.wait_for(
        lambda: next(iter(harness.slack.messages(channel)), None), message="no card in the DM"
    )


async def test_the_decision_is_the_steps_output(harness: Harness) -> None:
    slack = harness.slack
    builder = WorkflowBuilder(slack, manifest())
    carol = slack.user_id("carol")
    flow = await builder.start(approval_flow(builder, carol), user="alice")
    card = await dm_card(harness, "carol")
    assert "A new laptop" in str(card["blocks"])
    await slack.click("carol", card["ts"], "approval:approve", channel=card["channel"])
    await builder.finished(flow)
    assert flow.status == "completed", flow.error
    assert flow.outputs[0] == {"outcome": "approved", "decided_by": carol}
    assert f"Laptop approved by {carol}" in [m["text"] for m in slack.messages("general")]


async def test_a_rejection_is_an_outcome_not_an_error(harness: Harness) -> None:
    slack = harness.slack
    builder = WorkflowBuilder(slack, manifest())
    carol = slack.user_id("carol")
    flow = await builder.start(approval_flow(builder, carol), user="alice")
    card = await dm_card(harness, "carol")
    # Slack sends this click in the step's context: Bolt opens the modal with its token.
    result = await builder.click_in_step(flow.executions[0], "carol", card, "approval:reject")
    assert result.ok
    views = await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    await slack.submit_view("carol", views[-1]["id"], {"reason": {"reason": "Not this year"}})
    await builder.finished(flow)
    assert flow.outputs[0] == {"outcome": "rejected", "decided_by": carol}
    assert [c.method for c in completions(harness)] == ["functions.completeSuccess"]


async def test_a_click_in_the_step_opens_views_only_with_the_steps_token(
    harness: Harness,
) -> None:
    slack = harness.slack
    builder = WorkflowBuilder(slack, manifest())
    flow = await builder.start(approval_flow(builder, slack.user_id("carol")), user="alice")
    card = await dm_card(harness, "carol")
    seen: list[dict[str, Any]] = []
    slack.on_delivery(lambda d: seen.append(d.payload) if d.payload else None)
    await builder.click_in_step(flow.executions[0], "carol", card, "approval:reject")
    await slack.wait_for(lambda: slack.open_views("carol"), message="no reason modal")
    slack.on_delivery(None)
    execution = flow.executions[0]
    (click,) = [p for p in seen if p.get("type") == "block_actions"]
    assert click["function_data"]["execution_id"] == execution.id
    # The same kind of trigger, used with the app's own token, is refused.
    await builder.click_in_step(execution, "dave", card, "approval:reject")
    trigger = execution.triggers[-1]  # dave may not decide: no modal used it
    app_client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        await app_client.views_open(trigger_id=trigger, view={"type": "modal"})
    assert refused.value.response["error"] == "not_allowed_token_type"


async def test_the_waiting_approval_is_in_the_approvers_app_home(harness: Harness) -> None:
    slack = harness.slack
    builder = WorkflowBuilder(slack, manifest())
    carol = slack.user_id("carol")
    await builder.start(approval_flow(builder, carol), user="alice")
    await dm_card(harness, "carol")
    await slack.open_home("carol")
    home = await slack.wait_for(lambda: slack.home_view(carol), message="no App Home")
    text = str(home["blocks"])
    assert "approval:approve" in text and "A new laptop" in text
