"""The emulator's side of custom steps answers as Slack's method pages say (real slack_sdk)."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack.functions import WorkflowBuilder
from tests.functions.support import card_in, expense_flow, manifest
from tests.support.harness import BOT_TOKEN, Harness


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as failed:
        await call  # type: ignore[misc]
    return str(failed.value.response["error"])


async def test_completions_are_checked_and_the_token_ends_with_the_step(harness: Harness) -> None:
    slack = harness.slack
    builder = WorkflowBuilder(slack, manifest())
    flow = await builder.start(expense_flow(builder), user="alice")
    await card_in(harness)  # the bot's run waits for its approval
    execution = flow.executions[0]
    step = AsyncWebClient(token=execution.token, base_url=slack.api_url)
    app = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)

    assert (await step.auth_test())["ok"]  # the step's token works while it runs
    unknown = app.functions_completeSuccess(function_execution_id="Fx0NOPE", outputs={})
    assert await error_of(unknown) == "function_execution_not_found"
    missing = step.functions_completeSuccess(function_execution_id=execution.id, outputs={})
    assert await error_of(missing) == "parameter_validation_failed"
    not_a_user = {"outcome": "succeeded", "run_id": "r1", "decided_by": "nobody"}
    wrong = step.functions_completeSuccess(function_execution_id=execution.id, outputs=not_a_user)
    assert await error_of(wrong) == "parameter_validation_failed"
    assert execution.status == "running"

    outputs = {"outcome": "succeeded", "run_id": "r1"}
    await step.functions_completeSuccess(function_execution_id=execution.id, outputs=outputs)
    assert execution.status == "completed" and execution.outputs == outputs
    assert await error_of(step.auth_test()) == "invalid_auth"  # expired with the step
    again = app.functions_completeError(function_execution_id=execution.id, error="late")
    assert await error_of(again) == "execution_not_in_running_state"
    await builder.finished(flow)
    assert [m["text"] for m in slack.messages("general")][-1] == "Expense run r1: succeeded"
