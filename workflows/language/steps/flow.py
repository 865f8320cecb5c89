"""Models of the kinds that fan out and join: ``foreach`` (a step per item of a list),
``parallel`` (a group of steps at once), and ``workflow`` (a child run, waited for).

Their inner steps are ordinary step models (``AnyStep``, resolved by
``language/steps/__init__.py`` once every kind is known). An inner step runs as its own
durable job with its own retries; it may not wait for people or time, jump, or fan out
again (the kinds in ``NOT_INSIDE``), because its job ends when its one execution does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from workflows.language.spec import NAME_PATTERN, FieldPath, Reference, StepBase, Strict

if TYPE_CHECKING:
    from workflows.language.steps import AnyStep

NOT_INSIDE = frozenset({"approve", "route", "wait", "switch", "end", "digest", "workflow"})
"""Kinds an inner step may not be: they wait, jump, or fan out again."""
ITEM_NAMES = frozenset({"item", "index"})
"""What a ``foreach`` inner step's expressions see besides ``input``, ``steps`` and ``run``."""
MAX_ITEMS = 1000


def _inner_ok(step: StepBase) -> StepBase:
    if step.KIND in NOT_INSIDE or step.KIND in ("foreach", "parallel"):
        raise ValueError(f"{step.KIND} steps cannot run inside foreach or parallel")
    if step.goto is not None:
        raise ValueError("an inner step cannot goto: the group continues as one step")
    return step


class ForeachSpec(Strict):
    items: str = Field(description="Expression giving the list to go through")
    concurrency: int = Field(default=5, ge=1, le=100, description="Items running at once")
    on_failure: Literal["fail_fast", "collect"] = Field(
        default="fail_fast",
        description="fail_fast: an item that fails for good fails the step; "
        "collect: go on and list the failures",
    )
    do: AnyStep = Field(description="The step run per item; it sees item and index")

    @field_validator("do")
    @classmethod
    def _inner(cls, value: StepBase) -> StepBase:
        return _inner_ok(value)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """In the schema too, ``do`` is a step without an ``id`` of a kind allowed inside."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        do = schema["properties"]["do"]
        kinds = []
        for choice in do.pop("oneOf", []):
            try:
                step = dict(handler.resolve_ref_schema(choice))
            except LookupError:  # foreach/parallel themselves, still being built: not allowed
                continue
            kind = next((k for k in step.get("required", []) if k != "id"), None)
            if kind is None or kind in NOT_INSIDE or kind in ("foreach", "parallel"):
                continue
            step["required"] = [k for k in step["required"] if k != "id"]
            kinds.append(step)
        do.pop("discriminator", None)
        do["oneOf"] = kinds
        return schema


class ForeachStep(StepBase):
    KIND: ClassVar[str] = "foreach"
    OUTPUT: ClassVar[tuple[str, ...]] = ("items", "results", "errors", "failed")
    foreach: ForeachSpec

    @model_validator(mode="before")
    @classmethod
    def _inner_id(cls, data: Any) -> Any:
        """The inner step needs no id of its own: it is this step, once per item."""
        if isinstance(data, dict) and isinstance(data.get("foreach"), dict):
            inner = data["foreach"].get("do")
            if isinstance(inner, dict) and "id" not in inner and isinstance(data.get("id"), str):
                data = data | {"foreach": data["foreach"] | {"do": {"id": data["id"]} | inner}}
        return data

    def children(self) -> list[tuple[FieldPath, StepBase]]:
        return [(("foreach", "do"), self.foreach.do)]

    def local_names(self, key: FieldPath) -> frozenset[str]:
        return ITEM_NAMES if key[:2] == ("foreach", "do") else frozenset()

    def branch(self, index: int) -> StepBase:
        """The inner step as the job of item ``index`` runs it (its own outbox keys)."""
        return self.foreach.do.model_copy(update={"id": f"{self.id}.{index}"})


class ParallelSpec(Strict):
    steps: list[AnyStep] = Field(min_length=2, max_length=20, description="Run all at once")
    join: Literal["all", "first_success"] = Field(
        default="all",
        description="all: every branch must succeed; first_success: the first to succeed "
        "wins, the step fails only if every branch fails",
    )

    @field_validator("steps")
    @classmethod
    def _inner(cls, value: list[StepBase]) -> list[StepBase]:
        ids = [_inner_ok(step).id for step in value]
        if len(set(ids)) != len(ids):
            raise ValueError("branch ids must be distinct")
        return value


class ParallelStep(StepBase):
    KIND: ClassVar[str] = "parallel"
    parallel: ParallelSpec

    def children(self) -> list[tuple[FieldPath, StepBase]]:
        return [(("parallel", "steps", i), step) for i, step in enumerate(self.parallel.steps)]

    def outputs(self) -> tuple[str, ...]:
        return (*(step.id for step in self.parallel.steps), "winner", "errors")

    def branch(self, index: int) -> StepBase:
        inner = self.parallel.steps[index]
        return inner.model_copy(update={"id": f"{self.id}.{inner.id}"})


class SubWorkflowSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="The workflow to run as a child")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The child's input (expressions); `text` is its text"
    )
    next: dict[Literal["rejected", "timed_out", "failed", "cancelled"], str] = Field(
        default_factory=dict,
        description="Step to go to when the child ends so; unmapped, the step fails",
    )


class SubWorkflowStep(StepBase):
    KIND: ClassVar[str] = "workflow"
    OUTPUT: ClassVar[tuple[str, ...]] = ("run", "status", "steps")
    WAITS: ClassVar[bool] = True
    workflow: SubWorkflowSpec

    def jump_targets(self) -> list[Reference]:
        mapped = [(("workflow", "next", key), step) for key, step in self.workflow.next.items()]
        return super().jump_targets() + mapped
