"""The contract between the engine and a step kind.

A step kind is one async function ``execute(ctx) -> StepOutcome``. It may have
side effects, but each must be idempotent under re-execution: chat messages go
through ``ctx.send`` (keyed by run/step/purpose), outbound HTTP carries
``ctx.idempotency_key``. It raises ``StepError`` for a failure the workflow
should see; the engine applies the step's retry policy from ``retryable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflows.definitions import StepBase, Workflow
from workflows.expressions import Expressions
from workflows.ports import ChatMessage, Clock, MessageRef


class StepError(Exception):
    """A step failed; the message is short and fit for the request's thread."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


_DEFAULT: Any = object()


@dataclass
class StepOutcome:
    output: dict[str, Any] = field(default_factory=dict)
    """Stored at ``steps.<id>`` for later steps."""
    summary: str = ""
    """One line for the thread."""
    next_step: Any = _DEFAULT
    """Override of the step that runs next (``None`` ends the run)."""
    due_at: datetime | None = None
    """Run the next step no earlier than this (a durable wait)."""
    audit: dict[str, Any] = field(default_factory=dict)
    """Extra, secret-free facts for the audit record (model, confidence, …)."""

    @property
    def overrides_next(self) -> bool:
        return self.next_step is not _DEFAULT


SendMessage = Callable[[str, ChatMessage, str | None, str], Awaitable[MessageRef]]
"""``send(channel, message, thread_ts, purpose)`` -> the posted or updated message."""


@dataclass
class StepContext:
    run_id: str
    workflow: Workflow
    step: StepBase
    attempt: int
    scope: Mapping[str, Any]
    expressions: Expressions
    clock: Clock
    send: SendMessage
    thread: MessageRef | None
    services: Mapping[str, Any] = field(default_factory=dict)
    """Optional collaborators by name (``connectors``, ``ai``), set by the composition root."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step.id}"

    def evaluate(self, value: Any) -> Any:
        return self.expressions.evaluate(value, self.scope)


StepExecutor = Callable[[StepContext], Awaitable[StepOutcome]]
