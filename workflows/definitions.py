"""The workflow definition language: pydantic models of the YAML, one workflow per file.

``Workflow.model_json_schema()`` is what ``switchboard schema`` exports for
editors. Loading and the file:line error reports live in ``loader.py``.

A step is a mapping with an ``id`` and exactly one *kind* key (``set``,
``post``, ``wait``, …) whose value configures it. Control flow: steps run in
order; ``when`` skips a step whose condition is false; ``goto`` jumps after a
step; a ``switch`` step picks the next step from a value; ``end`` stops.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"4h"``, ``"30s"``, ``"500ms"`` or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 4h, 2d)")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- triggers -----------------------------------------------------------------------------


class CommandTrigger(Strict):
    command: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="/flow <command> <text>")


class MessageSpec(Strict):
    channel: str
    match: str | None = Field(default=None, description="Regular expression the text must match")

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return value


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


Trigger = CommandTrigger | MessageTrigger | ScheduleTrigger | WebhookTrigger


# --- steps --------------------------------------------------------------------------------


class RetryPolicy(Strict):
    attempts: int = Field(default=1, ge=1, le=100, description="Total tries, the first included")
    backoff: Literal["exponential", "fixed"] = "exponential"
    initial: Duration = 1.0
    max_delay: Duration = 300.0
    jitter: bool = True


class StepBase(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    when: str | bool | None = Field(default=None, description="Skip the step unless true")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration = Field(default=60.0, description="Per attempt")
    goto: str | None = Field(
        default=None, description="Step to run next instead of the following one"
    )
    quiet: bool = Field(default=False, description="Do not thread this step's result")


class SetStep(StepBase):
    set: dict[str, Any] = Field(description="Computed values: name -> expression")


class PostSpec(Strict):
    text: str | None = None
    template: str | None = Field(default=None, description="A Block Kit template in templates/")
    data: dict[str, Any] = Field(default_factory=dict)
    channel: str | None = Field(default=None, description="Default: the run's thread")
    user: str | None = Field(default=None, description="Send as a DM to this user")

    @model_validator(mode="after")
    def _text_or_template(self) -> PostSpec:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        return self


class PostStep(StepBase):
    post: PostSpec


class WaitSpec(Strict):
    duration: Duration | None = None
    until: str | None = Field(default=None, description="ISO-8601 time or an expression giving one")

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give exactly one of duration or until")
        return self


class WaitStep(StepBase):
    wait: WaitSpec


class FailStep(StepBase):
    fail: str = Field(description="The error message (an expression)")


class SwitchSpec(Strict):
    value: str = Field(description="Expression whose value picks the case")
    cases: dict[str, str] = Field(description="value -> step id")
    default: str | None = None


class SwitchStep(StepBase):
    switch: SwitchSpec


class HttpSpec(Strict):
    connection: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = "/"
    query: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    select: str | None = Field(default=None, description="JSON path into the response")


class HttpStep(StepBase):
    http: HttpSpec


class SqlSpec(Strict):
    connection: str
    query: str
    params: dict[str, Any] = Field(default_factory=dict)


class SqlStep(StepBase):
    sql: SqlSpec


class CallSpec(Strict):
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function")
    args: dict[str, Any] = Field(default_factory=dict)


class CallStep(StepBase):
    call: CallSpec


class EndStep(StepBase):
    end: Literal[True] | str = Field(description="true, or a closing message")


STEP_MODELS: dict[str, type[StepBase]] = {
    "set": SetStep,
    "post": PostStep,
    "wait": WaitStep,
    "fail": FailStep,
    "switch": SwitchStep,
    "http": HttpStep,
    "sql": SqlStep,
    "call": CallStep,
    "end": EndStep,
}


def step_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed step (the one key that names a step kind)."""
    if isinstance(value, StepBase):
        return next(k for k, m in STEP_MODELS.items() if isinstance(value, m))
    if isinstance(value, dict):
        kinds = [key for key in value if key in STEP_MODELS]
        return kinds[0] if len(kinds) == 1 else None
    return None


Step = Annotated[
    Annotated[SetStep, Tag("set")]
    | Annotated[PostStep, Tag("post")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[FailStep, Tag("fail")]
    | Annotated[SwitchStep, Tag("switch")]
    | Annotated[HttpStep, Tag("http")]
    | Annotated[SqlStep, Tag("sql")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[EndStep, Tag("end")],
    Discriminator(
        step_kind,
        custom_error_type="unknown_step_kind",
        custom_error_message=f"a step needs exactly one kind key: {', '.join(STEP_MODELS)}",
    ),
]


class OnError(Strict):
    notify: str | None = Field(default=None, description="Channel told about the failure")
    goto: str | None = Field(default=None, description="Step to run instead of stopping")


class Workflow(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str = ""
    channel: str | None = Field(default=None, description="Where runs post when not started in one")
    triggers: list[Trigger] = Field(default_factory=list)
    allowed_starters: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    on_error: OnError = Field(default_factory=OnError)

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
