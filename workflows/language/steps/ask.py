"""Model of the ``ask`` step: ask people for structured input mid-run, and wait for it.

A message (the run's thread, a channel or a DM) with a button that opens a form of
``fields`` (the same field models as a workflow's ``inputs:``). Who may answer is
given like approvers (user IDs, ``@group``, ``#channel`` members, expressions); the
first answer settles the question. Reminders and a timeout work as on approvals.
The answer is ``steps.<id>.answer.<field>``, typed (``workflows/form_values.py``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from workflows.language.inputs import MAX_FIELDS, InputField, check_fields
from workflows.language.spec import Duration, Reference, StepBase, Strict


class GotoOnTimeout(Strict):
    goto: str


class AskSpec(Strict):
    people: list[str] = Field(
        min_length=1, description="Who may answer: user IDs, @group, #channel (its members)"
    )
    channel: str | None = Field(
        default=None, description="Where the question goes (default: thread)"
    )
    user: str | None = Field(default=None, description="Send the question as a DM instead")
    title: str = Field(default="A question for you", max_length=150)
    text: str = Field(default="", description="The question (mrkdwn, expressions allowed)")
    button: str = Field(default="Answer", min_length=1, max_length=24)
    fields: list[InputField] = Field(min_length=1, max_length=MAX_FIELDS)
    not_requester: bool = Field(default=False, description="The requester may not answer")
    remind_every: Duration | None = None
    timeout: Duration | None = None
    on_timeout: Literal["end", "continue"] | GotoOnTimeout = Field(
        default="end",
        description="end: the run ends timed_out; continue: go on without an answer; or goto",
    )

    @model_validator(mode="after")
    def _valid(self) -> AskSpec:
        if self.channel and self.user:
            raise ValueError("give channel or user, not both")
        check_fields(self.fields)
        return self


class AskStep(StepBase):
    KIND: ClassVar[str] = "ask"
    OUTPUT: ClassVar[tuple[str, ...]] = (
        "gate",
        "status",
        "people",
        "answer",
        "answered_by",
        "answered_at",
    )
    WAITS: ClassVar[bool] = True
    ask: AskSpec

    def jump_targets(self) -> list[Reference]:
        targets = super().jump_targets()
        if isinstance(self.ask.on_timeout, GotoOnTimeout):
            targets.append((("ask", "on_timeout", "goto"), self.ask.on_timeout.goto))
        return targets

    def templates(self) -> list[Reference]:
        return [(("ask",), "ask_card")]
