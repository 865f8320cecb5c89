"""What a run looks like in chat: its root message, one note per step, failure notes, and
the ``send``/``upload`` a step uses for its own messages and cards.

Everything here goes through the outbox (``workflows/outbox.py``), keyed by
(run, step, purpose), so a re-executed job updates what it posted instead of
posting again. The run's own presence is optional: a process with no chat
(``NullChat``) runs the same workflows without a thread, so ``ChatDisabled`` is
swallowed here, and only here; a step that itself needs chat still fails on it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from connectors.secrets import scrub
from workflows.chat_waits import chat_time
from workflows.jobs import ClaimedJob
from workflows.language.spec import StepBase
from workflows.language.workflow import Workflow
from workflows.null_chat import ChatDisabled
from workflows.outbox import Outbox
from workflows.ports import Chat, ChatError, ChatFile, ChatMessage, MessageRef
from workflows.steps.base import SendMessage, StepOutcome, UploadFile
from workflows.tables import RunRow

log = logging.getLogger(__name__)

ROOT_STEP = "_run"
"""The outbox's step id for messages about the whole run (root, received)."""


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
        data = {
            "run": run_view(run),
            "workflow": {"name": workflow.name, "title": workflow.title},
            "input": run.context.get("input", {}),
        }
        message = ChatMessage("run_started", data)
        with contextlib.suppress(ChatDisabled):
            return await self.outbox.send(
                run.id, ROOT_STEP, "root", channel, message, attempt=job.attempt
            )
        return None

    async def _received(
        self, run: RunRow, workflow: Workflow, ref: MessageRef, job: ClaimedJob
    ) -> None:
        """First reply under an intake message: say we have it (and read it, for reactions)."""
        inputs = run.context.get("input", {})
        if inputs.get("fetch_text") and not inputs.get("text"):
            # Read after start_run, so scrubbed here: a reaction's text is request text too.
            text = scrub(await self._chat.message_text(ref.channel, str(inputs.get("message_ts"))))
            run.context = dict(run.context) | {"input": dict(inputs) | {"text": text}}
        data = {"run": run_view(run), "workflow": {"name": workflow.name, "title": workflow.title}}
        await self.outbox.send(
            run.id,
            ROOT_STEP,
            "received",
            ref.channel,
            ChatMessage("run_received", data),
            thread_ts=ref.ts,
            attempt=job.attempt,
        )

    async def step_note(
        self,
        run: RunRow,
        step: StepBase,
        thread: MessageRef,
        outcome: StepOutcome,
        detail: dict[str, Any],
        job: ClaimedJob,
    ) -> None:
        """The step's one-line result and audit under the root."""
        # A step's first run has one note; each later signal or timer adds its own.
        purpose = "result" if job.kind == "step" else f"{job.kind}-{job.id}"
        data = {
            "step": {"id": step.id, "kind": detail["kind"]},
            "summary": outcome.summary,
            "audit": detail,
            "run": run_view(run),
        }
        message = ChatMessage("step_result", data)
        with contextlib.suppress(ChatDisabled):
            await self.outbox.send(
                run.id,
                step.id,
                purpose,
                thread.channel,
                message,
                thread_ts=thread.ts,
                attempt=job.attempt,
            )

    async def step_failed(self, run: RunRow, step: StepBase, job: ClaimedJob, error: str) -> None:
        """Tell the run's thread (if it has one) why the step failed; chat trouble is logged."""
        if not (run.channel_id and run.root_ts):
            return
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
