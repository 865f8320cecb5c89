"""The workflow: one per YAML file, its triggers and its steps.

``Workflow.model_json_schema()`` is what ``switchboard schema`` exports for
editors. Loading and the file:line error reports live in ``workflows/loader.py``.

A step is a mapping with an ``id`` and exactly one *kind* key (``set``,
``post``, ``wait``, …) whose value configures it. Control flow: steps run in
order; ``when`` skips a step whose condition is false; ``goto`` jumps after a
step; a ``switch`` step picks the next step from a value; ``end`` stops.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from workflows.language.inputs import MAX_FIELDS, RESERVED_INPUTS, InputField, check_fields
from workflows.language.spec import NAME_PATTERN, StepBase, Strict
from workflows.language.steps import AnyStep
from workflows.language.triggers import CommandTrigger, Trigger
from workflows.language.workflow_tests import WorkflowTest


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
    inputs: list[InputField] = Field(
        default_factory=list,
        max_length=MAX_FIELDS,
        description="The start form: `/flow <workflow>` without text opens it; input.<id>",
    )
    steps: list[AnyStep] = Field(min_length=1)
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

    thread: Literal["compact", "full"] = Field(
        default="compact",
        description="compact: the root shows status and outcome, one run card lists the steps; "
        "full: one thread message per step",
    )

    tests: list[WorkflowTest] = Field(
        default_factory=list, description="Run by `switchboard test`; the engine ignores them"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Workflow:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        check_fields(self.inputs, RESERVED_INPUTS)
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
