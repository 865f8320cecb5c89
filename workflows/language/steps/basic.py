"""Models of the kinds that need nothing outside the engine: set, post, wait, fail, switch, end,
call."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from workflows.language.spec import Duration, Reference, StepBase, Strict, ValueType


class SetStep(StepBase):
    KIND: ClassVar[str] = "set"
    set: dict[str, Any] = Field(description="Computed values: name -> expression")

    def outputs(self) -> tuple[str, ...]:
        return tuple(self.set)


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
    KIND: ClassVar[str] = "post"
    OUTPUT: ClassVar[tuple[str, ...]] = ("channel", "ts")
    post: PostSpec

    def templates(self) -> list[Reference]:
        template = self.post.template
        return [(("post", "template"), template)] if template else []


class WaitSpec(Strict):
    duration: Duration | None = None
    until: str | None = Field(default=None, description="ISO-8601 time or an expression giving one")

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give exactly one of duration or until")
        return self


class WaitStep(StepBase):
    KIND: ClassVar[str] = "wait"
    OUTPUT: ClassVar[tuple[str, ...]] = ("until",)
    WAITS: ClassVar[bool] = True
    wait: WaitSpec


class FailStep(StepBase):
    KIND: ClassVar[str] = "fail"
    fail: str = Field(description="The error message (an expression)")


class SwitchSpec(Strict):
    value: str = Field(description="Expression whose value picks the case")
    cases: dict[str, str] = Field(description="value -> step id")
    default: str | None = None


class SwitchStep(StepBase):
    KIND: ClassVar[str] = "switch"
    OUTPUT: ClassVar[tuple[str, ...]] = ("value", "next")
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {"value": "text", "next": "text"}
    switch: SwitchSpec

    def jump_targets(self) -> list[Reference]:
        cases = [(("switch", "cases", value), step) for value, step in self.switch.cases.items()]
        default = self.switch.default
        return (
            super().jump_targets() + cases + ([(("switch", "default"), default)] if default else [])
        )


class CallSpec(Strict):
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function")
    args: dict[str, Any] = Field(default_factory=dict)


class CallStep(StepBase):
    KIND: ClassVar[str] = "call"
    call: CallSpec

    def outputs(self) -> None:
        return None  # whatever mapping the function returns


class EndStep(StepBase):
    KIND: ClassVar[str] = "end"
    OUTPUT: ClassVar[tuple[str, ...]] = ("note",)
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {"note": "text"}
    end: Literal[True] | str = Field(description="true, or a closing message")
