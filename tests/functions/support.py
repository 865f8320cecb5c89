"""What the Workflow Builder tests share: the workflows the bot runs, the manifest, look-ups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from sandbox.slack.functions import BuiltWorkflow, FunctionStep, MessageStep, WorkflowBuilder
from tests.support.harness import Harness
from workflows.tables import FunctionRunRow

ROOT = Path(__file__).resolve().parents[2]
EXPENSE = """
name: expense
title: Expense approval
channel: "#general"
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      title: "Expense: {{ input.text }}"
  - id: book
    set: {booked: "{{ input.text }}"}
"""
BROKEN = """
name: broken
title: Always fails
channel: "#general"
steps:
  - id: boom
    fail: "the ledger is closed for {{ input.text }}"
"""


def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(data, dict)
    return data


def expense_flow(builder: WorkflowBuilder, workflow: str = "expense") -> BuiltWorkflow:
    inputs = {"workflow": workflow, "text": "team dinner", "requester": "{{trigger.user}}"}
    return builder.workflow(
        "Expenses",
        [
            FunctionStep("run_workflow", inputs),
            MessageStep("#general", "Expense run {{steps.0.run_id}}: {{steps.0.outcome}}"),
        ],
    )


async def card_in(harness: Harness) -> dict[str, Any]:
    return await harness.slack.wait_for(
        lambda: next(iter(harness.slack.messages("finance-approvals")), None),
        message="no approval card",
    )


async def function_rows(harness: Harness) -> list[FunctionRunRow]:
    async with harness.runtime.store.read() as session:
        return list(await session.scalars(select(FunctionRunRow)))


async def recorded(harness: Harness) -> FunctionRunRow:
    """The one function row, once its completion is recorded (after Slack answered)."""

    async def completed() -> FunctionRunRow | None:
        rows = await function_rows(harness)
        return rows[0] if len(rows) == 1 and rows[0].completed_at is not None else None

    return await harness.slack.wait_for(completed, message="the completion was not recorded")


def completions(harness: Harness) -> list[Any]:
    slack = harness.slack
    return slack.api_calls("functions.completeSuccess") + slack.api_calls("functions.completeError")
