"""What a run looks like in chat: its root message (with its status and outcome), its run
card or one note per step, failure notes, and the ``send``/``upload`` a step uses for its
own messages and cards.

``thread: compact`` (the default): the root shows "waiting: …" while the run waits and
its outcome when it ends; one run card in the thread lists every step (result or
"skipped", and its audit line), its lines kept in ``runs.context["card"]`` so any worker
renders the whole card; decisions (``TOLD_ACTIONS``), failures and the workflow's own
posts are messages of their own. Card, status and outcome go out in the background
(``Outbox.send_later``): a job never waits for them. ``thread: full``: one note per step,
the root as posted.

Everything here goes through the outbox (``workflows/outbox.py``), keyed by
(run, step, purpose), so a re-executed job updates what it posted instead of
posting again. The run's own presence is optional: a process with no chat
(``NullChat``) runs the same workflows without a thread, so ``ChatDisabled`` is
swallowed here, and only here; a step that itself needs chat still fails on it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from connectors.secrets import scrub
from workflows.chat_lanes import CARD, HUMAN, ROOT, Priority
from workflows.chat_waits import chat_time
from workflows.jobs import ClaimedJob
from workflows.language.spec import StepBase
from workflows.language.workflow import Workflow
from workflows.null_chat import ChatDisabled
from workflows.outbox import Outbox
from workflows.ports import Chat, ChatError, ChatFile, ChatMessage, MessageRef
from workflows.request_text import capped
from workflows.steps.base import SendMessage, StepOutcome, UploadFile
from workflows.tables import RunRow

log = logging.getLogger(__name__)

ROOT_STEP = "_run"
"""The outbox's step id for messages about the whole run (root, received, card)."""
CARD_KEY = "card"
"""Where ``runs.context`` keeps the run card's lines (compact threads)."""
CARD_LINES = 60
"""Lines a card shows (the latest); the audit trail has every step."""
TOLD_ACTIONS = frozenset(
    {
        "approval.completed",
        "approval.card_updated",
        "approval.escalated",
        "approval.no_eligible_approver",
        "route.claimed",
        "route.closed",
        "route.relabelled",
    }
)
"""Step outcomes that are also a message of their own in a compact thread: decisions (and
delegations, escalations) people must read."""


class Presence:
    def __init__(self, outbox: Outbox, chat: Chat) -> None:
        self.outbox = outbox
        self._chat = chat

    async def root(self, run: RunRow, workflow: Workflow, job: ClaimedJob) -> MessageRef | None:
        """The run's root message, posted once; every step threads under it."""
        if run.root_ts and run.channel_id:
            # Started by someone's own message (intake): that message is the root.
            ref = MessageRef(run.channel_id, run.root_ts)
            if job.kind == "step" and not run.context.get("steps"):
                with contextlib.suppress(ChatDisabled):
                    await self._received(run, workflow, ref, job)
            return ref
        channel = run.channel_id or workflow.channel
        if channel is None:
            return None
        message = ChatMessage("run_started", _root_data(run, workflow))
        with contextlib.suppress(ChatDisabled):
            return await self.outbox.send(
                run.id, ROOT_STEP, "root", channel, message, attempt=job.attempt, priority=ROOT
            )
        return None

    async def _received(
        self, run: RunRow, workflow: Workflow, ref: MessageRef, job: ClaimedJob
    ) -> None:
        """First reply under an intake message: say we have it (and read it, for reactions)."""
        inputs = run.context.get("input", {})
        if inputs.get("fetch_text") and not inputs.get("text"):
            # Read after start_run, so scrubbed here: a reaction's text is request text too.
            read = await self._chat.message_text(ref.channel, str(inputs.get("message_ts")))
            text = capped(scrub(read))
            run.context = dict(run.context) | {"input": dict(inputs) | {"text": text}}
            self.outbox.learn(run.id, text)  # its mentions must not ping when echoed
        data = _root_data(run, workflow)
        await self.outbox.send(
            run.id,
            ROOT_STEP,
            "received",
            ref.channel,
            ChatMessage("run_received", data),
            thread_ts=ref.ts,
            attempt=job.attempt,
            priority=ROOT,
        )

    async def step_note(
        self,
        run: RunRow,
        workflow: Workflow,
        step: StepBase,
        thread: MessageRef,
        outcome: StepOutcome,
        detail: dict[str, Any],
        job: ClaimedJob,
    ) -> None:
        """The step's result and audit: its own message (``full``, or a decision people must
        read), and in ``compact`` mode its line on the run card."""
        # A step's first run has one note; each later signal or timer adds its own.
        purpose = "result" if job.kind == "step" else f"{job.kind}-{job.id}"
        data = {
            "step": {"id": step.id, "kind": detail["kind"]},
            "summary": outcome.summary,
            "audit": detail,
            "run": run_view(run),
        }
        with contextlib.suppress(ChatDisabled):
            if workflow.thread == "compact":
                note(run, step.id, _line_state(outcome), outcome.summary, detail)
                await self._card_later(run, workflow, thread)
                if outcome.waiting and job.kind == "step":
                    await self._root_later(
                        run, workflow, {"status": "waiting", "text": outcome.summary}
                    )
            if workflow.thread == "full" or outcome.action in TOLD_ACTIONS:
                await self.outbox.send(
                    run.id,
                    step.id,
                    purpose,
                    thread.channel,
                    ChatMessage("step_result", data),
                    thread_ts=thread.ts,
                    attempt=job.attempt,
                )

    async def ended(
        self,
        run: RunRow,
        workflow: Workflow | None,
        ending: str,
        *,
        by: str | None = None,
        step: str | None = None,
    ) -> None:
        """The run's outcome on its root and its card's final state: ✅ done, ❌ rejected by
        @dana, ⚠️ failed at step X, cancelled, timed out. Sent in the background (retried on
        429/5xx), after the ending commit: the job's worker slot is not held for it."""
        if workflow is None or workflow.thread != "compact" or not run.channel_id:
            return
        outcome = {"status": ending, "by": by, "step": step}
        await self._root_later(run, workflow, outcome, HUMAN)
        if run.root_ts and run.context.get(CARD_KEY):
            await self._card_later(run, workflow, MessageRef(run.channel_id, run.root_ts), outcome)

    async def _root_later(
        self, run: RunRow, workflow: Workflow, outcome: dict[str, Any], priority: Priority = CARD
    ) -> None:
        """The root's status or outcome; under someone's own message, our "received" reply's."""
        if not run.channel_id:
            return
        data = _root_data(run, workflow) | {"outcome": outcome}
        if run.root_ts and run.context.get("input", {}).get("message_ts") == run.root_ts:
            await self.outbox.send_later(
                run.id,
                ROOT_STEP,
                "received",
                run.channel_id,
                ChatMessage("run_received", data),
                thread_ts=run.root_ts,
                priority=priority,
            )
            return
        message = ChatMessage("run_started", data)
        await self.outbox.send_later(
            run.id, ROOT_STEP, "root", run.channel_id, message, priority=priority
        )

    async def _card_later(
        self,
        run: RunRow,
        workflow: Workflow,
        thread: MessageRef,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        message = _card(run, workflow, outcome)
        await self.outbox.send_later(
            run.id, ROOT_STEP, "card", thread.channel, message, thread_ts=thread.ts
        )

    async def step_failed(self, run: RunRow, step: StepBase, job: ClaimedJob, error: str) -> None:
        """Tell the run's thread (if it has one) why the step failed; chat trouble is logged."""
        if not (run.channel_id and run.root_ts):
            return
        if run.context.get(CARD_KEY) is not None:
            note(run, step.id, "failed", error, {"attempt": job.attempt})
        data = {"run": run_view(run), "step": {"id": step.id}, "error": error}
        try:
            await self.outbox.send(
                run.id,
                step.id,
                "error",
                run.channel_id,
                ChatMessage("step_failed", data),
                thread_ts=run.root_ts,
                attempt=job.attempt,
            )
        except ChatDisabled:
            return
        except ChatError as exc:
            log.warning("could not thread a failure", extra={"run_id": run.id, "error": str(exc)})

    async def notify_failure(
        self, run: RunRow, workflow: Workflow, step: StepBase, job: ClaimedJob, error: str
    ) -> None:
        """The workflow's ``on_error.notify`` channel or person hears of a failed run."""
        if not workflow.on_error.notify:
            return
        data = {"run": run_view(run), "error": error, "step": step.id}
        with contextlib.suppress(ChatDisabled):
            await self.outbox.send(
                run.id,
                step.id,
                "on_error",
                workflow.on_error.notify,
                ChatMessage("run_failed", data),
                attempt=job.attempt,
            )

    def sender(self, run: RunRow, step: StepBase, job: ClaimedJob) -> SendMessage:
        """The step's own ``ctx.send``: its messages and cards, keyed by purpose."""

        async def send(
            channel: str, message: ChatMessage, thread_ts: str | None, purpose: str
        ) -> MessageRef:
            with chat_time():  # delivering a message is chat's time, not the step's
                return await self.outbox.send(
                    run.id,
                    step.id,
                    purpose,
                    channel,
                    message,
                    thread_ts=thread_ts,
                    attempt=job.attempt,
                )

        return send

    def uploader(self, run: RunRow, step: StepBase) -> UploadFile:
        """The step's own ``ctx.upload``: a file shared once per purpose."""

        async def upload(channel: str, file: ChatFile, thread_ts: str | None, purpose: str) -> None:
            with chat_time():
                await self.outbox.upload(
                    run.id, step.id, purpose, channel, file, thread_ts=thread_ts
                )

        return upload


def run_view(run: RunRow) -> dict[str, Any]:
    """The run as templates and expressions see it."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "requester": run.requester,
        "channel": run.channel_id,
        "status": run.status,
    }


def note(run: RunRow, step_id: str, state: str, summary: str, detail: Mapping[str, Any]) -> None:
    """Put the step's line on the run card (``runs.context``, committed with the step)."""
    audit = {k: detail[k] for k in ("kind", "attempt", "ms", "output", "model") if k in detail}
    if "confidence" in detail:
        audit["confidence"] = detail["confidence"]
    line = {"id": step_id, "state": state, "summary": summary[:300], "audit": audit}
    lines = [entry for entry in run.context.get(CARD_KEY, []) if entry["id"] != step_id]
    run.context = dict(run.context) | {CARD_KEY: [*lines, line][-CARD_LINES:]}


def _line_state(outcome: StepOutcome) -> str:
    if outcome.output.get("skipped") is True:
        return "skipped"
    return "waiting" if outcome.waiting else "done"


def _card(run: RunRow, workflow: Workflow, outcome: dict[str, Any] | None) -> ChatMessage:
    data = _root_data(run, workflow) | {
        "lines": run.context.get(CARD_KEY, []),
        "outcome": outcome,
    }
    return ChatMessage("run_card", data)


def _root_data(run: RunRow, workflow: Workflow) -> dict[str, Any]:
    return {
        "run": run_view(run),
        "workflow": {"name": workflow.name, "title": workflow.title},
        "input": run.context.get("input", {}),
    }
