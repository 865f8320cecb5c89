"""The contract between the engine and a step kind.

A step kind is one async function ``execute(ctx) -> StepOutcome``. It may have
side effects, but each must be idempotent under re-execution: chat messages go
and files through ``ctx.send`` / ``ctx.upload`` (keyed by run/step/purpose), outbound HTTP carries
``ctx.idempotency_key``. It raises ``StepError`` for a failure the workflow
should see; the engine applies the step's retry policy from ``retryable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

from connectors.ai.base import AIProvider
from connectors.http import HttpConnector
from connectors.registry import ConnectorRegistry
from connectors.sql import SqlConnector
from workflows.expressions import ExpressionError, Expressions
from workflows.language.spec import StepBase
from workflows.language.workflow import Workflow
from workflows.null_chat import NullChat
from workflows.ports import Chat, ChatFile, ChatMessage, Clock, MessageRef
from workflows.store import Store


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
    waiting: bool = False
    """The run waits for people or time: no next step; a signal or timer job resumes it."""
    timers: list[Timer] = field(default_factory=list)
    """Jobs for this step to run later (reminders, timeouts), queued with the result."""
    action: str = "step.completed"
    """The audit action recorded for this outcome."""
    fan_out: list[dict[str, Any]] = field(default_factory=list)
    """Item jobs (``foreach``/``parallel``, ``workflows/fanout.py``) queued with the result."""

    @property
    def overrides_next(self) -> bool:
        return self.next_step is not _DEFAULT


@dataclass(frozen=True)
class Timer:
    due_at: datetime
    name: str
    payload: dict[str, Any] = field(default_factory=dict)


SendMessage = Callable[[str, ChatMessage, str | None, str], Awaitable[MessageRef]]
"""``send(channel, message, thread_ts, purpose)`` -> the posted or updated message."""
UploadFile = Callable[[str, ChatFile, str | None, str], Awaitable[None]]
"""``upload(channel, file, thread_ts, purpose)``: shared once per purpose, like a message."""


@dataclass(frozen=True)
class Services:
    """Collaborators from outside the engine, built by the composition root."""

    connectors: ConnectorRegistry | None = None
    ai: AIProvider | None = None
    steps_dir: Path | None = None
    """``<workflows folder>/steps``: where ``call: steps.<module>:<function>`` is loaded from."""


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
    upload: UploadFile
    thread: MessageRef | None
    services: Services
    store: Store
    chat: Chat = field(default_factory=NullChat)
    """For reads (group members); posting and uploading go through ``send``/``upload``."""
    job_kind: str = "step"
    """``step`` the first time; ``signal`` when people acted; ``timer`` when a timer fired."""
    payload: Mapping[str, Any] = field(default_factory=dict)
    requester: str | None = None
    job_id: int = 0
    """The job being run: stable across re-executions of it (a child run's dedupe key)."""
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    """The loaded workflows by name (``workflow`` steps start children from them)."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step.id}"

    def evaluate(self, value: Any) -> Any:
        return self.expressions.evaluate(value, self.scope)


StepExecutor = Callable[[StepContext], Awaitable[StepOutcome]]


@dataclass(frozen=True)
class StepKind:
    """A step kind: its pydantic model (which knows its key in YAML) and its executor."""

    model: type[StepBase]
    execute: StepExecutor

    @property
    def name(self) -> str:
        return self.model.KIND


def evaluate(ctx: StepContext, value: Any) -> Any:
    """Evaluate definition expressions; a failure is the step's failure, told in the thread."""
    try:
        return ctx.evaluate(value)
    except ExpressionError as exc:
        raise StepError(f"expression failed: {exc}") from None


@overload
def connector_for(ctx: StepContext, name: str, kind: Literal["http"]) -> HttpConnector: ...
@overload
def connector_for(ctx: StepContext, name: str, kind: Literal["sql"]) -> SqlConnector: ...
def connector_for(ctx: StepContext, name: str, kind: Literal["http", "sql"]) -> Any:
    registry = ctx.services.connectors
    if registry is None or name not in registry.names:
        raise StepError(f"connection {name!r} is not configured")
    return registry.http(name) if kind == "http" else registry.sql(name)
