"""Fields people fill in: a workflow's ``inputs:`` (its start form) and an ``ask`` step's form.

A field is data: its ``id`` (the key in ``input.<id>`` or ``steps.<ask>.answer.<id>``),
its ``type``, whether it is ``required``, a ``default`` and its limits. The bot builds
the Slack modal from these (``templates/form_fields.json.j2``); what was entered is
checked and typed by ``workflows/form_values.py``: ``number`` is a number, ``money``
a ``Money`` (``{{ input.amount > 1000 }}`` works), ``date`` an ISO date string,
``user``/``channel`` an ID, the rest text.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from workflows.language.spec import NAME_PATTERN, RESERVED_STEP_IDS, Strict

InputType = Literal["text", "long_text", "number", "money", "date", "select", "user", "channel"]
MAX_FIELDS = 20
"""A modal holds 100 blocks; a form longer than this is a form nobody finishes."""
RESERVED_INPUTS = frozenset({"text", "user", "channel", "schedule", "message_ts"})
"""Keys every run's ``input`` already has (the request text, the requester, ...)."""


class Option(Strict):
    value: str = Field(min_length=1, max_length=150)
    label: str = Field(default="", max_length=75, description="Shown; default: the value")


class InputField(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    label: str = Field(default="", max_length=2000, description="Shown; default: the id")
    type: InputType = "text"
    required: bool = False
    default: str | int | float | None = Field(
        default=None, description="Pre-filled (a select: one option's value)"
    )
    hint: str = Field(default="", max_length=2000)
    options: list[str | Option] = Field(
        default_factory=list, max_length=100, description="select: the choices"
    )
    min: float | None = Field(default=None, description="number / money: the smallest allowed")
    max: float | None = Field(default=None, description="number / money: the largest allowed")
    max_length: int | None = Field(default=None, ge=1, le=3000, description="text: at most")
    currency: str = Field(
        default="", pattern=r"^([A-Z]{3})?$", description="money: when none is typed"
    )

    @model_validator(mode="after")
    def _consistent(self) -> InputField:
        if self.type == "select" and not self.options:
            raise ValueError(f"input {self.id!r}: a select needs options")
        if self.options and self.type != "select":
            raise ValueError(f"input {self.id!r}: only a select has options")
        if (self.min is not None or self.max is not None) and self.type not in (
            "number",
            "money",
        ):
            raise ValueError(f"input {self.id!r}: min/max are for number and money")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"input {self.id!r}: min is above max")
        if (
            self.type == "select"
            and self.default is not None
            and (str(self.default) not in self.option_values())
        ):
            raise ValueError(f"input {self.id!r}: the default is not one of the options")
        if self.type == "date" and self.default is not None:
            try:
                date.fromisoformat(str(self.default))
            except ValueError:
                raise ValueError(f"input {self.id!r}: a date default is YYYY-MM-DD") from None
        return self

    def option_values(self) -> list[str]:
        return [o if isinstance(o, str) else o.value for o in self.options]

    def choices(self) -> list[Option]:
        return [Option(value=o) if isinstance(o, str) else o for o in self.options]

    @property
    def shown_label(self) -> str:
        return self.label or self.id.replace("_", " ").capitalize()


def check_fields(fields: list[InputField], reserved: frozenset[str] = frozenset()) -> None:
    """Ids are unique and none shadows a key the run's context already has."""
    seen: set[str] = set()
    for field in fields:
        if field.id in seen:
            raise ValueError(f"input id {field.id!r} is used twice")
        if field.id in RESERVED_STEP_IDS:
            raise ValueError(
                f"input id {field.id!r} is reserved: in expressions input.{field.id} means "
                "the mapping's method, not the value; choose another id"
            )
        if field.id in reserved:
            raise ValueError(
                f"input id {field.id!r} is reserved (input.{field.id} is already set); "
                "choose another id"
            )
        seen.add(field.id)
