"""Workflow Builder in the emulator: workflows whose steps call the app's custom steps.

Slack's protocol, as its pages describe it:

- the app declares ``functions`` in its manifest; a workflow step that calls one makes Slack
  send a ``function_executed`` event with the ``function`` (its ``callback_id`` and
  parameters), the ``inputs``, a ``function_execution_id``, the ``workflow_execution_id``
  and a ``bot_access_token`` for this execution
  (https://docs.slack.dev/reference/events/function_executed/);
- the app ends the step with ``functions.completeSuccess`` (``outputs`` that fit the
  function's output parameters, else ``parameter_validation_failed``) or
  ``functions.completeError`` (an ``error`` message); an execution that is not running is
  ``execution_not_in_running_state``, an unknown one ``function_execution_not_found``
  (https://api.slack.com/methods/functions.completeSuccess); then the workflow goes on to
  its next step with the outputs, or stops with the error;
- the execution's token is "an expiring token generated for the context of a workflow
  step" (https://docs.slack.dev/authentication/tokens/#wfb): here it works until the
  execution completes and is ``invalid_auth`` after;
- a click on a message the step posted carries ``function_data`` (``execution_id``, the
  function, its inputs) and that ``bot_access_token``
  (https://docs.slack.dev/tools/bolt-js/reference/interfaces/BlockAction); Bolt then calls
  the Web API with that token (its ``AttachingFunctionToken`` middleware). Such a click's
  ``trigger_id`` opens a modal only with the execution's token here: another token is
  ``not_allowed_token_type`` (the emulator's choice of Slack error code).

Use::

    builder = WorkflowBuilder(slack, manifest)
    flow = builder.workflow("Invoices", [
        FunctionStep("run_workflow", {"workflow": "invoice", "requester": "{{trigger.user}}"}),
        MessageStep("#finance", "Run {{steps.0.run_id}} ended {{steps.0.outcome}}"),
    ])
    run = await builder.start(flow, user="alice")
    await builder.finished(run)
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .emulator import SlackEmulator
from .methods import ApiError, Args
from .records import JSON, Message
from .web_api import ACCEPTED

REFERENCE = re.compile(r"\{\{\s*(trigger|steps)\.([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\s*\}\}")
SLACK_ID_TYPES = {"slack#/types/user_id": "U", "slack#/types/channel_id": "C"}


@dataclass(frozen=True)
class FunctionStep:
    """A step that calls one of the app's functions; input values may name ``{{trigger.user}}``
    or an earlier step's output ``{{steps.<index>.<name>}}``."""

    callback_id: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class MessageStep:
    """Slack's own "Send a message" step; ``text`` may name earlier steps' outputs."""

    channel: str
    text: str


@dataclass(frozen=True)
class BuiltWorkflow:
    id: str
    title: str
    steps: Sequence[FunctionStep | MessageStep]


@dataclass
class WorkflowRun:
    """One execution of a built workflow (``Wx…``)."""

    id: str
    workflow: BuiltWorkflow
    trigger: dict[str, Any]
    status: str = "running"
    """``running`` | ``completed`` | ``failed``."""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    executions: list[Execution] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Execution:
    """One function step's execution (``Fx…``) and its token."""

    id: str
    run: WorkflowRun
    callback_id: str
    inputs: dict[str, Any]
    token: str
    status: str = "running"
    """``running`` | ``completed`` | ``failed``."""
    outputs: dict[str, Any] | None = None
    error: str | None = None
    event: JSON = field(default_factory=dict)
    triggers: list[str] = field(default_factory=list)
    """``trigger_id``s of clicks in this step (they open views with its token only)."""


class WorkflowBuilder:
    """Workflow Builder and its runtime for the app's manifest ``functions``."""

    def __init__(self, slack: SlackEmulator, manifest: Mapping[str, Any]) -> None:
        self.slack = slack
        self.functions: dict[str, JSON] = dict(manifest.get("functions") or {})
        self.executions: dict[str, Execution] = {}
        self._tokens: dict[str, Execution] = {}
        self._spent: set[str] = set()
        self._step_triggers: dict[str, Execution] = {}
        # Same package: the Web API's method table and token rules are the emulator's own.
        table = slack._methods.table
        table["functions.completeSuccess"] = self._complete_success
        table["functions.completeError"] = self._complete_error
        slack._api.token_guards.append(self._token_rule)

    # ------------------------------------------------------------------ building

    def workflow(self, title: str, steps: Sequence[FunctionStep | MessageStep]) -> BuiltWorkflow:
        """As Workflow Builder publishes: each function exists and has its required inputs."""
        for step in steps:
            if isinstance(step, FunctionStep):
                definition = self.functions.get(step.callback_id)
                if definition is None:
                    raise ValueError(f"the app has no function {step.callback_id!r}")
                params = definition.get("input_parameters") or {}
                missing = [
                    n for n, p in params.items() if p.get("is_required") and n not in step.inputs
                ]
                if missing:
                    raise ValueError(f"{step.callback_id}: required inputs missing: {missing}")
        return BuiltWorkflow(f"Wf{secrets.token_hex(5).upper()}", title, tuple(steps))

    async def start(self, workflow: BuiltWorkflow, user: str) -> WorkflowRun:
        """Someone starts the workflow (a link trigger): steps run until one waits."""
        trigger = {"user": self.slack.user_id(user)}
        run = WorkflowRun(f"Wx{secrets.token_hex(5).upper()}", workflow, trigger)
        await self._advance(run)
        return run

    async def finished(self, run: WorkflowRun, timeout: float = 15.0) -> WorkflowRun:  # noqa: ASYNC109
        await asyncio.wait_for(run.done.wait(), timeout)
        return run

    async def redeliver(self, execution: Execution) -> None:
        """The same ``function_executed`` again (a new envelope, as after a lost ack)."""
        await self.slack.send_event(dict(execution.event))

    # ------------------------------------------------------------------ running

    async def _advance(self, run: WorkflowRun) -> None:
        while run.status == "running" and len(run.outputs) < len(run.workflow.steps):
            step = run.workflow.steps[len(run.outputs)]
            if isinstance(step, MessageStep):
                self._post(step, run)
                run.outputs.append({})
                continue
            await self._execute(run, step)
            return  # the step waits for the app's completion
        if run.status == "running":
            run.status = "completed"
        run.done.set()

    async def _execute(self, run: WorkflowRun, step: FunctionStep) -> None:
        definition = self.functions[step.callback_id]
        inputs = {name: _resolve(value, run) for name, value in step.inputs.items()}
        execution = Execution(
            id=f"Fx{secrets.token_hex(5).upper()}",
            run=run,
            callback_id=step.callback_id,
            inputs=inputs,
            token=f"xwfp-{secrets.token_hex(4)}-{secrets.token_hex(12)}",
        )
        execution.event = _function_executed(self.slack, execution, definition)
        self.executions[execution.id] = execution
        self._tokens[execution.token] = execution
        run.executions.append(execution)
        await self.slack.send_event(dict(execution.event))

    def _post(self, step: MessageStep, run: WorkflowRun) -> None:
        ws = self.slack.workspace
        text = REFERENCE.sub(lambda m: str(_reference(m, run)), step.text)
        channel = self.slack.channel_id(step.channel)
        ws.add_message(Message(channel=channel, ts=ws.clock.next(), user=ws.bot_user_id, text=text))

    def _finish(self, execution: Execution, status: str) -> None:
        execution.status = status
        self._spent.add(execution.token)  # the token expires with the execution
        self._tokens.pop(execution.token, None)
        run = execution.run
        if status == "completed":
            run.outputs.append(dict(execution.outputs or {}))
            self.slack._spawn(self._advance(run))
        else:
            run.status, run.error = "failed", execution.error
            run.done.set()

    # ------------------------------------------------------------------ Web API

    def _running(self, args: Args) -> Execution:
        execution = self.executions.get(args.req("function_execution_id"))
        if execution is None:
            raise ApiError("function_execution_not_found")
        if execution.status != "running":
            raise ApiError("execution_not_in_running_state")
        return execution

    def _complete_success(self, args: Args) -> JSON:
        execution = self._running(args)
        outputs = args.json("outputs", "invalid_arguments")
        problems = _output_problems(self.functions[execution.callback_id], outputs, self.slack)
        if problems:
            raise ApiError("parameter_validation_failed", errors=problems)
        execution.outputs = dict(outputs)
        self._finish(execution, "completed")
        return {}

    def _complete_error(self, args: Args) -> JSON:
        execution = self._running(args)
        execution.error = args.req("error")
        self._finish(execution, "failed")
        return {}

    def _token_rule(self, token: str, method: str, args: dict[str, Any]) -> str | None:
        if token in self._spent:
            return "invalid_auth"
        execution = self._tokens.get(token)
        trigger = str(args.get("trigger_id") or "")
        bound = self._step_triggers.get(trigger)
        if bound is not None and method.startswith("views.") and execution is not bound:
            return "not_allowed_token_type"  # a step's trigger opens views with its token only
        return ACCEPTED if execution is not None else None

    # ------------------------------------------------------------------ interactivity

    async def click_in_step(
        self, execution: Execution, user: str, message: Mapping[str, Any], action_id: str
    ) -> Any:
        """A click on a message that belongs to the step: ``function_data`` and its token."""
        slack, ws = self.slack, self.slack.workspace
        u = slack.user(user)
        msg = ws.find_message(str(message["channel"]), str(message["ts"]))
        assert msg is not None, "no such message"
        action = slack._action(msg.blocks or [], action_id, None, None)
        trigger = ws.new_trigger(u.id)
        self._step_triggers[trigger.id] = execution
        execution.triggers.append(trigger.id)
        ch = slack.channel(msg.channel)
        payload = payloads.block_actions(
            ws, u, [action], trigger.id, channel=ch, message=ws.message_dict(msg), message_ts=msg.ts
        )
        function = {"callback_id": execution.callback_id}
        payload["function_data"] = {
            "execution_id": execution.id,
            "function": function,
            "inputs": execution.inputs,
        }
        payload["bot_access_token"] = execution.token
        return await slack._deliverer.send_interaction(payload)


def _function_executed(slack: SlackEmulator, execution: Execution, definition: JSON) -> JSON:
    def params(kind: str) -> list[JSON]:
        return [
            {"name": name} | {k: v for k, v in spec.items()}
            for name, spec in (definition.get(kind) or {}).items()
        ]

    function = {
        "id": f"Fn{abs(hash(execution.callback_id)) % 10**9:09d}",
        "callback_id": execution.callback_id,
        "title": definition.get("title"),
        "description": definition.get("description"),
        "type": "app",
        "input_parameters": params("input_parameters"),
        "output_parameters": params("output_parameters"),
        "app_id": slack.workspace.app_id,
        "date_created": int(time.time()),
        "date_updated": int(time.time()),
        "date_deleted": 0,
    }
    return {
        "type": "function_executed",
        "function": function,
        "inputs": execution.inputs,
        "function_execution_id": execution.id,
        "workflow_execution_id": execution.run.id,
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": execution.token,
    }


def _reference(match: re.Match[str], run: WorkflowRun) -> Any:
    scope, name, output = match.groups()
    if scope == "trigger":
        return run.trigger.get(name, "")
    index = int(name)
    return run.outputs[index].get(output or "", "") if index < len(run.outputs) else ""


def _resolve(value: Any, run: WorkflowRun) -> Any:
    if isinstance(value, list):
        return [_resolve(v, run) for v in value]
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return _reference(whole, run)
    return REFERENCE.sub(lambda m: str(_reference(m, run)), value)


def _output_problems(definition: JSON, outputs: Any, slack: SlackEmulator) -> list[str]:
    if not isinstance(outputs, dict):
        return ["outputs must be an object"]
    params: dict[str, JSON] = definition.get("output_parameters") or {}
    problems = [f"unknown output {name!r}" for name in outputs if name not in params]
    for name, spec in params.items():
        if name not in outputs:
            if spec.get("is_required"):
                problems.append(f"missing required output {name!r}")
            continue
        value, kind = outputs[name], str(spec.get("type"))
        if kind == "string" and not isinstance(value, str):
            problems.append(f"{name!r} must be a string")
        elif kind == "slack#/types/user_id" and slack.workspace.find_user(str(value)) is None:
            problems.append(f"{name!r} is not a user id")
    return problems
