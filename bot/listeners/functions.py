"""Workflow Builder steps: ``function_executed`` for the manifest's ``functions``.

Bolt's ``app.function`` (https://docs.slack.dev/tools/bolt-python/concepts/custom-steps)
acks the event; the listener starts a durable run in one transaction, with the execution
id and its ``bot_access_token`` recorded beside it (``workflows/function_runs.py``). The
run's ending completes the step, minutes or days later; nothing waits here. A redelivered
event (same ``function_execution_id``) finds the run the first one started.

A step that cannot start (no such workflow, a requester the workflow's
``allowed_starters`` refuse) is failed at once with Bolt's ``fail`` (the execution's
token), after the ack.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.fail.async_fail import AsyncFail

from bot.background import Background
from bot.deps import BotDeps
from bot.request_text import capped
from workflows.function_runs import APPROVAL_WORKFLOW, RUN_WORKFLOW
from workflows.language.workflow import Workflow
from workflows.runs import StartRequest, record_refusal, start_run
from workflows.start_rows import FunctionExecution

SOURCE = "workflow_builder"


class FunctionStepListeners:
    def __init__(self, deps: BotDeps, background: Background) -> None:
        self.deps = deps
        self.background = background

    async def on_run_workflow(
        self, event: dict[str, Any], body: dict[str, Any], fail: AsyncFail
    ) -> None:
        inputs = _inputs(event)
        name = str(inputs.get("workflow") or "").strip()
        workflow = self.deps.workflows.get(name)
        if workflow is None:
            known = ", ".join(sorted(self.deps.workflows)[:20]) or "none"
            self._fail(fail, f"Switchboard has no workflow named {name!r} (known: {known}).")
            return
        await self._start(workflow, event, body, fail, inputs)

    async def on_ask_for_approval(
        self, event: dict[str, Any], body: dict[str, Any], fail: AsyncFail
    ) -> None:
        inputs = _inputs(event)
        approvers = inputs.get("approvers")
        if not isinstance(approvers, list) or not all(isinstance(a, str) and a for a in approvers):
            self._fail(fail, "Ask for approval needs approvers: a list of people.")
            return
        # The card goes to the step's channel (or a DM): the run itself has no thread.
        inputs["step_channel"] = inputs.pop("channel", None)
        await self._start(APPROVAL_WORKFLOW, event, body, fail, inputs)

    async def _start(
        self,
        workflow: Workflow,
        event: dict[str, Any],
        body: dict[str, Any],
        fail: AsyncFail,
        inputs: dict[str, Any],
    ) -> None:
        execution_id = str(event.get("function_execution_id") or "")
        if not execution_id:
            return  # nothing Slack could be told about (Bolt matches only events with one)
        callback_id = str((event.get("function") or {}).get("callback_id") or RUN_WORKFLOW)
        requester = str(inputs.get("requester") or "") or None
        channel = str(inputs.get("channel") or "") or None  # where the run's thread goes
        extra = {k: v for k, v in inputs.items() if k not in ("workflow", "text", "requester")}
        request = StartRequest(
            workflow=workflow,
            source=SOURCE,
            text=capped(str(inputs.get("text") or "")),
            user_id=requester,
            channel_id=channel,
            team_id=body.get("team_id"),
            input=extra | {"workflow_execution_id": event.get("workflow_execution_id")},
            # Slack's retries and a redelivered event: one run per execution.
            dedupe_key=f"function:{execution_id}",
            function=FunctionExecution(execution_id, callback_id, event.get("bot_access_token")),
        )
        starters = self.deps.starters
        refused = starters.check(workflow, requester, channel) if starters else None
        if refused is not None:
            await record_refusal(
                self.deps.store, request, refused.rule, refused.allowed, self.deps.clock.now()
            )
            self._fail(fail, f"The requester may not start {workflow.name} ({refused.rule}).")
            return
        await start_run(self.deps.store, request, self.deps.clock.now())
        self.deps.wakeup.set()

    def _fail(self, fail: AsyncFail, error: str) -> None:
        """After the ack: ``functions.completeError`` with the execution's token."""
        self.background.spawn(fail(error=error), "function-step-fail")


def _inputs(event: dict[str, Any]) -> dict[str, Any]:
    """The step's inputs; anything but an object (Slack sends one) is no inputs."""
    inputs = event.get("inputs")
    return dict(inputs) if isinstance(inputs, dict) else {}
