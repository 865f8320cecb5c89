"""``/flow``: parse, do at most one short transaction, ack. Never a Web API call here.

The ack's body is the ephemeral answer the user sees; the run itself is picked
up by a worker, which posts the root message and threads the steps.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from bot.deps import BotDeps
from workflows.runs import (
    RunNotFound,
    RunStateError,
    StartRequest,
    cancel_run,
    get_run,
    retry_run,
    start_run,
)

SUBCOMMANDS = ("help", "list", "start", "status", "cancel", "retry")


@dataclass(frozen=True)
class FlowCommand:
    action: str
    workflow: str = ""
    text: str = ""
    run_id: str = ""
    problem: str = ""


def parse_flow(text: str, workflow_commands: dict[str, str]) -> FlowCommand:
    """``workflow_commands`` maps every name a workflow answers to (its name, its commands)."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return FlowCommand("help")
    head, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if head in ("help", "list"):
        return FlowCommand(head)
    if head in ("status", "cancel", "retry"):
        run_id = rest.strip().split()[0] if rest.strip() else ""
        if not run_id:
            return FlowCommand("help", problem=f"`/flow {head}` needs a run id.")
        return FlowCommand(head, run_id=run_id)
    if head == "start":
        parts = rest.split(maxsplit=1)
        if not parts:
            return FlowCommand("help", problem="`/flow start` needs a workflow name.")
        head, rest = parts[0].lower(), (parts[1] if len(parts) > 1 else "")
    if head in workflow_commands:
        return FlowCommand("start", workflow=workflow_commands[head], text=rest.strip())
    return FlowCommand(
        "help", problem=f"I don't know `{_safe(head)}`: not a subcommand or a workflow."
    )


def _safe(word: str) -> str:
    return shlex.quote(word)[:40].replace("`", "'")


class FlowCommands:
    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps

    def _commands(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for workflow in self.deps.workflows.values():
            names[workflow.name] = workflow.name
            for command in workflow.commands:
                names.setdefault(command, workflow.name)
        return names

    async def on_flow(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        parsed = parse_flow(str(command.get("text", "")), self._commands())
        user = str(command.get("user_id", ""))
        if parsed.action == "help":
            await self._answer(ack, "flow_help", {"problem": parsed.problem})
        elif parsed.action == "list":
            await self._answer(ack, "flow_list", {"workflows": self._catalogue()})
        elif parsed.action == "start":
            await self._start(ack, parsed, command)
        else:
            await self._run_action(ack, parsed, user)

    async def _start(self, ack: AsyncAck, parsed: FlowCommand, command: dict[str, Any]) -> None:
        workflow = self.deps.workflows[parsed.workflow]
        started = await start_run(
            self.deps.store,
            StartRequest(
                workflow=workflow,
                source="command",
                text=parsed.text,
                user_id=command.get("user_id"),
                channel_id=command.get("channel_id"),
                team_id=command.get("team_id"),
            ),
            self.deps.clock.now(),
        )
        self.deps.wakeup.set()
        await self._answer(
            ack,
            "flow_ack",
            {
                "text": f"Started *{workflow.title or workflow.name}* (run `{started.run_id}`). "
                "Follow the thread in this channel."
            },
        )

    async def _run_action(self, ack: AsyncAck, parsed: FlowCommand, user: str) -> None:
        now = self.deps.clock.now()
        try:
            if parsed.action == "status":
                run = await get_run(self.deps.store, parsed.run_id)
                await self._answer(ack, "run_status", {"run": _view(run), "trail": []})
                return
            if parsed.action == "cancel":
                run = await cancel_run(self.deps.store, parsed.run_id, user, now)
                text = f"Cancelled run `{run.id}`."
            else:
                run = await retry_run(self.deps.store, parsed.run_id, user, now)
                self.deps.wakeup.set()
                text = f"Retrying run `{run.id}` from step *{run.current_step}*."
        except RunNotFound:
            text = f"There is no run `{_safe(parsed.run_id)}`."
        except RunStateError as exc:
            text = str(exc)
        await self._answer(ack, "flow_ack", {"text": text})

    def _catalogue(self) -> list[dict[str, str]]:
        return [
            {
                "name": wf.name,
                "title": wf.title,
                "description": wf.description,
                "command": (wf.commands or [wf.name])[0],
            }
            for wf in sorted(self.deps.workflows.values(), key=lambda wf: wf.name)
        ]

    async def _answer(self, ack: AsyncAck, template: str, data: dict[str, Any]) -> None:
        rendered = self.deps.renderer.render(template, data)
        await ack(text=rendered.text, blocks=rendered.blocks, response_type="ephemeral")


def _view(run: Any) -> dict[str, Any]:
    return {"id": run.id, "workflow": run.workflow, "status": run.status, "error": run.error}
