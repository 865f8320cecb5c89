"""The workflow definition language: pydantic models of the YAML, one workflow per file.

``Workflow.model_json_schema()`` is what ``switchboard schema`` exports for
editors. Loading and the file:line error reports live in ``loader.py``.

A step is a mapping with an ``id`` and exactly one *kind* key (``set``,
``post``, ``wait``, …) whose value configures it. Control flow: steps run in
order; ``when`` skips a step whose condition is false; ``goto`` jumps after a
step; a ``switch`` step picks the next step from a value; ``end`` stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from workflows.patterns import compile_linear
from workflows.spec import NAME_PATTERN, Duration, StepBase, Strict
from workflows.steps import STEP_KINDS
from workflows.steps.http import HttpSpec
from workflows.steps.sql import SqlSpec

# --- triggers -----------------------------------------------------------------------------


class CommandTrigger(Strict):
    command: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="/flow <command> <text>")


class MessageSpec(Strict):
    channel: str
    match: str | None = Field(
        default=None,
        description="Regular expression the text must match (RE2 syntax: linear time, "
        "no backreferences or lookarounds)",
    )
    threads: bool = Field(default=False, description="Also start on replies in threads")

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_linear(value)
        return value

    def matches(self, text: str) -> bool:
        """Whether ``text`` starts this trigger; linear in ``len(text)`` whatever the pattern."""
        return self.match is None or compile_linear(self.match).search(text) is not None


class MessageTrigger(Strict):
    message: MessageSpec


class ScheduleSpec(Strict):
    cron: str
    timezone: str = "UTC"
    misfire: Literal["skip", "run_once"] = "skip"
    grace: Duration = 300.0

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleSpec:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except (ValueError, LookupError) as exc:
            raise ValueError(
                f"bad cron {self.cron!r} / timezone {self.timezone!r}: {exc}"
            ) from None
        return self


class ScheduleTrigger(Strict):
    schedule: ScheduleSpec


class WebhookSpec(Strict):
    secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    idempotency_field: str | None = None


class WebhookTrigger(Strict):
    webhook: WebhookSpec


class ThresholdSpec(Strict):
    """A scheduled check of one number; fires when it crosses ``above``/``below`` (hysteresis).

    Fires once when the value goes past the threshold, then re-arms only after the value
    comes back to ``clear`` (default: the threshold itself). Sources take literal values:
    no ``{{ }}`` templates, there is no run to evaluate them in.
    """

    every: Duration = Field(default=60.0, ge=1.0, description="How often to check")
    http: HttpSpec | None = Field(default=None, description="Read the value from a JSON API")
    sql: SqlSpec | None = Field(default=None, description="First column of the first row")
    above: float | None = Field(default=None, description="Fire when the value exceeds this")
    below: float | None = Field(default=None, description="Fire when the value drops under this")
    clear: float | None = Field(default=None, description="Re-arm once the value is back here")

    @model_validator(mode="after")
    def _one_source_one_bound(self) -> ThresholdSpec:
        if (self.http is None) == (self.sql is None):
            raise ValueError("a threshold needs exactly one source: http or sql")
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold needs exactly one of above or below")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError("clear must not be greater than above")
            if self.below is not None and self.clear < self.below:
                raise ValueError("clear must not be less than below")
        return self

    @property
    def connection(self) -> str:
        source = self.http or self.sql
        assert source is not None
        return source.connection


class ThresholdTrigger(Strict):
    threshold: ThresholdSpec


class MentionTrigger(Strict):
    mention: bool = Field(description="Start when someone @mentions the bot")


class ReactionSpec(Strict):
    emoji: str = Field(pattern=r"^[a-z0-9_+\-]+$", description="Without colons, e.g. ticket")
    channel: str | None = Field(default=None, description="Only in this channel")


class ReactionTrigger(Strict):
    reaction: ReactionSpec


class ShortcutTrigger(Strict):
    shortcut: bool = Field(description='The "Send to Switchboard" message shortcut')


TRIGGER_KINDS: dict[str, type[Strict]] = {
    "command": CommandTrigger,
    "message": MessageTrigger,
    "schedule": ScheduleTrigger,
    "webhook": WebhookTrigger,
    "threshold": ThresholdTrigger,
    "mention": MentionTrigger,
    "reaction": ReactionTrigger,
    "shortcut": ShortcutTrigger,
}


def trigger_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed trigger, so a bad trigger reports only its own errors."""
    if isinstance(value, dict):
        kinds = [key for key in value if key in TRIGGER_KINDS]
        return kinds[0] if len(kinds) == 1 else None
    return next((k for k, model in TRIGGER_KINDS.items() if isinstance(value, model)), None)


Trigger = Annotated[
    Annotated[CommandTrigger, Tag("command")]
    | Annotated[MessageTrigger, Tag("message")]
    | Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[WebhookTrigger, Tag("webhook")]
    | Annotated[ThresholdTrigger, Tag("threshold")]
    | Annotated[MentionTrigger, Tag("mention")]
    | Annotated[ReactionTrigger, Tag("reaction")]
    | Annotated[ShortcutTrigger, Tag("shortcut")],
    Discriminator(
        trigger_kind,
        custom_error_type="unknown_trigger_kind",
        custom_error_message=f"a trigger needs exactly one kind key: {', '.join(TRIGGER_KINDS)}",
    ),
]


def step_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed step (the one key that names a step kind)."""
    if isinstance(value, StepBase):
        return next(k for k, kind in STEP_KINDS.items() if isinstance(value, kind.model))
    if isinstance(value, dict):
        kinds = [key for key in value if key in STEP_KINDS]
        return kinds[0] if len(kinds) == 1 else None
    return None


def _step_union() -> Any:
    members = tuple(Annotated[kind.model, Tag(name)] for name, kind in STEP_KINDS.items())
    return Annotated[
        Union[members],  # noqa: UP007 - a Union built from the registry needs the subscript form
        Discriminator(
            step_kind,
            custom_error_type="unknown_step_kind",
            custom_error_message=f"a step needs exactly one kind key: {', '.join(STEP_KINDS)}",
        ),
    ]


if TYPE_CHECKING:
    Step = StepBase
else:
    Step = _step_union()


class OnError(Strict):
    notify: str | None = Field(default=None, description="Channel told about the failure")
    goto: str | None = Field(default=None, description="Step to run instead of stopping")


class Retention(Strict):
    days: int = Field(ge=1, le=36500, description="Finished runs lose their texts after this")


class Workflow(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str = ""
    channel: str | None = Field(default=None, description="Where runs post when not started in one")
    triggers: list[Trigger] = Field(default_factory=list)
    allowed_starters: list[str] = Field(
        default_factory=list, description="Who may start it: user IDs, @groups, #channel members"
    )
    in_channels: list[str] = Field(
        default_factory=list, alias="in", description="Where it may be started; empty: anywhere"
    )
    steps: list[Step] = Field(min_length=1)
    on_error: OnError = Field(default_factory=OnError)
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="At most this many of the workflow's steps run at once, across all "
        "worker processes (others wait their turn in the queue)",
    )
    retention: Retention | None = Field(
        default=None, description="Overrides SWITCHBOARD_RETENTION_DAYS for this workflow's runs"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Workflow:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> StepBase:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_step_id(self, step_id: str) -> str | None:
        ids = [step.id for step in self.steps]
        index = ids.index(step_id)
        return ids[index + 1] if index + 1 < len(ids) else None

    @property
    def commands(self) -> list[str]:
        return [t.command for t in self.triggers if isinstance(t, CommandTrigger)]
