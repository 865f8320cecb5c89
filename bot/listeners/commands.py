"""``/flow``: parse, do at most one short transaction, ack. Never a Web API call here.

The ack's body is the ephemeral answer the user sees; the run itself is picked
up by a worker, which posts the root message and threads the steps. ``stats``
reads a whole period, so it acks at once and answers through the command's
``response_url`` after the listener returns (``bot/background.py``).
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.deps import BotDeps
from bot.listeners.forms import FormListeners, begin_run
from bot.listeners.home import catalogue
from bot.listeners.routing import refusal_for
from bot.logs import scrub_tokens
from bot.render import EPHEMERAL
from bot.replay import SeenRequests, command_key
from bot.request_text import refusal, too_long
from workflows import routing
from workflows.inbox import may_see, pending_approvals, trail
from workflows.language.spec import NAME_PATTERN
from workflows.runs import (
    REPLAYED,
    RunNotFound,
    RunStateError,
    StartRequest,
    cancel_run,
    get_run,
    retry_run,
)
from workflows.stats import collect, is_period, parse_period, summary

SUBCOMMANDS = ("help", "list", "start", "status", "cancel", "retry", "stats")
DEFAULT_STATS_PERIOD = "7d"
log = logging.getLogger(__name__)
_WORKFLOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_STEP_ID = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class FlowCommand:
    action: str
    workflow: str = ""
    text: str = ""
    run_id: str = ""
    problem: str = ""
    step: str = ""
    """``retry <run> <step>``: re-run from this step."""
    reason: str = ""
    """``cancel|retry <run> ... -- <reason>``: why, for the audit trail."""


def parse_flow(text: str, workflow_commands: dict[str, str]) -> FlowCommand:
    """``workflow_commands`` maps every name a workflow answers to (its name, its commands)."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return FlowCommand("help")
    head, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if head in ("help", "list", "approvals"):
        return FlowCommand(head)
    if head == "stats":
        return _parse_stats(rest, workflow_commands)
    if head in ("status", "cancel", "retry"):
        return _parse_run_action(head, rest)
    if head == "route":
        words = rest.split()
        if len(words) != 2:
            return FlowCommand(
                "help", problem="`/flow route <run> <label>` records where a request went."
            )
        return FlowCommand("route", run_id=words[0], text=words[1])
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


def _parse_stats(rest: str, workflow_commands: dict[str, str]) -> FlowCommand:
    """``stats [workflow] [period]``, either order; ``text`` carries the period."""
    workflow, period = "", DEFAULT_STATS_PERIOD
    for word in rest.split()[:2]:
        if is_period(word):
            period = word.lower()
        elif word.lower() in workflow_commands:
            workflow = workflow_commands[word.lower()]
        elif _WORKFLOW_NAME.match(word):
            workflow = word  # a workflow no longer defined still has its history
        else:
            return FlowCommand(
                "help",
                problem=f"`/flow stats [workflow] [period]`: I don't know `{_safe(word)}` "
                "(a period looks like 24h, 7d or 2w).",
            )
    return FlowCommand("stats", workflow=workflow, text=period)


def _parse_run_action(head: str, rest: str) -> FlowCommand:
    """``status <run>``, ``cancel <run> [-- reason]``, ``retry <run> [step] [-- reason]``."""
    words, _, reason = rest.partition("--")
    args = words.split()
    if not args:
        return FlowCommand("help", problem=f"`/flow {head}` needs a run id.")
    step = args[1] if head == "retry" and len(args) > 1 else ""
    if step and not _STEP_ID.match(step):
        return FlowCommand("help", problem=f"`{_safe(step)}` is not a step id.")
    return FlowCommand(head, run_id=args[0], step=step, reason=" ".join(reason.split())[:200])


def _safe(word: str) -> str:
    return shlex.quote(word)[:40].replace("`", "'")


class FlowCommands:
    def __init__(
        self,
        deps: BotDeps,
        background: Background | None = None,
        forms: FormListeners | None = None,
    ) -> None:
        self.deps = deps
        self.background = background or Background()
        self.forms = forms or FormListeners(deps, self.background)
        # A fast path for replays to this process; retry_run/cancel_run check durably.
        self.seen = SeenRequests()

    def _commands(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for workflow in self.deps.workflows.values():
            names[workflow.name] = workflow.name
            for command in workflow.commands:
                names.setdefault(command, workflow.name)
        return names

    async def on_flow(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        text = str(command.get("text", ""))
        if too_long(text):
            await self._answer(ack, "flow_ack", {"text": refusal(text)})
            return
        parsed = parse_flow(text, self._commands())
        user = str(command.get("user_id", ""))
        if parsed.action in ("cancel", "retry", "route") and not self._first_time(command):
            await self._answer(ack, "flow_ack", {"text": REPLAYED})
            return
        if parsed.action == "help":
            await self._answer(ack, "flow_help", {"problem": parsed.problem})
        elif parsed.action == "list":
            await self._answer(ack, "flow_list", {"workflows": catalogue(self.deps.workflows)})
        elif parsed.action == "approvals":
            pending = await pending_approvals(self.deps.store, user)
            await self._answer(ack, "flow_approvals", {"pending": pending})
        elif parsed.action == "start":
            await self._start(ack, parsed, command, respond, client)
        elif parsed.action == "route":
            await self._route(ack, parsed, user)
        elif parsed.action == "stats":
            await self._stats(ack, parsed, respond)
        else:
            await self._run_action(ack, parsed, user, command_key(*_ids(command)))

    async def _start(
        self,
        ack: AsyncAck,
        parsed: FlowCommand,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        workflow = self.deps.workflows[parsed.workflow]
        request = StartRequest(
            workflow=workflow,
            source="command",
            # A token pasted into a request is never stored, threaded or audited.
            text=scrub_tokens(parsed.text),
            user_id=command.get("user_id"),
            channel_id=command.get("channel_id"),
            team_id=command.get("team_id"),
            # A replayed command (same trigger_id) finds the run the first one started.
            dedupe_key=_start_key(command),
            trigger_id=command.get("trigger_id"),
        )
        if workflow.inputs and command.get("trigger_id") and self._refused(request) is None:
            # The form asks for what the text did not say (all of it, without text).
            request, found = self.forms.fill(request)
            if found is not None:
                await ack()
                trigger = str(command["trigger_id"])
                self.forms.open_start_form(client, trigger, request, respond, found)
                return
        _, message = await begin_run(self.deps, request)
        await self._answer(ack, "flow_ack", {"text": message})

    def _refused(self, request: StartRequest) -> str | None:
        """Told at once instead of a form that could only be refused on submit."""
        starters = self.deps.starters
        refused = (
            starters.check(request.workflow, request.user_id, request.channel_id)
            if starters
            else None
        )
        return refused.message if refused is not None else None

    def _first_time(self, command: dict[str, Any]) -> bool:
        key = command_key(*_ids(command))
        return key is None or self.seen.first_time(key)

    async def _stats(self, ack: AsyncAck, parsed: FlowCommand, respond: AsyncRespond) -> None:
        """Ack now; read the period and answer after the ack (it can take a while)."""
        text = f"Working out the stats for the past {parsed.text}…"
        await self._answer(ack, "flow_ack", {"text": text})
        self.background.spawn(self._answer_stats(parsed, respond), "flow-stats")

    async def _answer_stats(self, parsed: FlowCommand, respond: AsyncRespond) -> None:
        now = self.deps.clock.now()
        try:
            stats = await collect(
                self.deps.store,
                start=now - parse_period(parsed.text),
                end=now,
                now=now,
                workflow=parsed.workflow or None,
            )
            data = {"stats": summary(stats), "period": parsed.text}
            rendered = self.deps.renderer.render("stats", data)
        except Exception:  # the person gets a short answer; the log gets the reason
            log.exception("flow stats failed")
            rendered = self.deps.renderer.render(
                "flow_ack", {"text": "The stats could not be worked out just now; try again."}
            )
        await respond(
            text=rendered.text,
            blocks=rendered.blocks,
            response_type="ephemeral",
            replace_original=False,
        )

    async def _route(self, ack: AsyncAck, parsed: FlowCommand, user: str) -> None:
        """People's routing decision for a request the bot only shadowed."""
        row = await routing.shadow_assignment_of(self.deps.store, parsed.run_id)
        refused = await refusal_for(self.deps, row.id, user) if row is not None else None
        if row is None:
            text = f"Run `{_safe(parsed.run_id)}` has no request waiting for a routing decision."
        elif refused is not None:
            text = refused
        else:
            labels = await routing.labels_for(self.deps.store, self.deps.workflows, row.id)
            if parsed.text not in labels:
                text = f"`{_safe(parsed.text)}` is not a team here: {', '.join(labels)}."
            else:
                result = await routing.relabel(
                    self.deps.store,
                    row.id,
                    user,
                    parsed.text,
                    self.deps.clock.now(),
                    source="shadow",
                )
                self.deps.wakeup.set()
                text = result.message
        await self._answer(ack, "flow_ack", {"text": text})

    async def _run_action(
        self, ack: AsyncAck, parsed: FlowCommand, user: str, request_key: str | None
    ) -> None:
        """status, cancel and retry: for the run's requester, its deciders and admins.

        ``request_key`` travels into cancel/retry, which refuse a key already used: a
        replay that reaches another process (whose ``seen`` never saw it) acts once.
        """
        try:
            run = await get_run(self.deps.store, parsed.run_id)
            admin = self.deps.route_access is not None and self.deps.route_access.is_admin(user)
            if not admin and not await may_see(self.deps.store, run, user):
                raise RunNotFound(parsed.run_id)  # don't confirm that someone else's run exists
            if parsed.action == "status":
                lines = await trail(self.deps.store, run.id)
                await self._answer(ack, "run_status", {"run": _view(run), "trail": lines})
                return
            text = await self._change(parsed, run.workflow, user, request_key, admin)
        except RunNotFound:
            text = f"There is no run `{_safe(parsed.run_id)}`."
        except RunStateError as exc:
            text = str(exc)
        await self._answer(ack, "flow_ack", {"text": text})

    async def _change(
        self, parsed: FlowCommand, workflow: str, user: str, key: str | None, admin: bool
    ) -> str:
        """Cancel or retry (``parsed.step``: from that step), audited with who and why."""
        now, store, note = self.deps.clock.now(), self.deps.store, _note(parsed, admin)
        if parsed.action == "cancel":
            run = await cancel_run(store, parsed.run_id, user, now, key, note)
            return f"Cancelled run `{run.id}`."
        run = await retry_run(
            store,
            parsed.run_id,
            user,
            now,
            key,
            from_step=parsed.step or None,
            workflow=self.deps.workflows.get(workflow),
            note=note,
        )
        self.deps.wakeup.set()
        return f"Retrying run `{run.id}` from step *{run.current_step}*."

    async def _answer(self, ack: AsyncAck, template: str, data: dict[str, Any]) -> None:
        renderer = self.deps.renderer
        # The one-line answer is precompiled (issue 24: acks at Bolt's floor).
        rendered = (
            renderer.ephemeral(data["text"])
            if template == EPHEMERAL
            else renderer.render(template, data)
        )
        await ack(text=rendered.text, blocks=rendered.blocks, response_type="ephemeral")


def _ids(command: dict[str, Any]) -> tuple[object, object]:
    return command.get("team_id"), command.get("trigger_id")


def _start_key(command: dict[str, Any]) -> str | None:
    key = command_key(*_ids(command))
    return f"command:{key}" if key else None


def _note(parsed: FlowCommand, admin: bool) -> dict[str, Any]:
    """Who acted as what, and why: joins the cancel/retry audit record."""
    note: dict[str, Any] = {"admin": True} if admin else {}
    return note | ({"reason": scrub_tokens(parsed.reason)} if parsed.reason else {})


def _view(run: Any) -> dict[str, Any]:
    return {"id": run.id, "workflow": run.workflow, "status": run.status, "error": run.error}
