"""Triggers: what starts a run (a command, a message, a schedule, a webhook, a threshold, ...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from connectors.patterns import compile_linear
from workflows.language.spec import Duration, Strict
from workflows.language.steps.http import HttpSpec
from workflows.language.steps.sql import SqlSpec


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
