"""Models of the AI steps: ``classify``, ``extract`` and ``summarize``.

A classification below ``min_confidence`` (or a provider that fails) answers
``label: null, triage: true``; ``on_low_confidence`` names the step to go to then.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from connectors.ai.base import FieldType
from connectors.patterns import compile_linear
from workflows.language.spec import Reference, StepBase, Strict, ValueType

DEFAULT_TEXT = "{{ input.text }}"
PROVENANCE_OUTPUT = ("method", "provenance")


class LabelDef(Strict):
    description: str = ""
    examples: list[str] = Field(default_factory=list)
    example_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Examples grouped by kind of request within the label"
    )


class ClassifySpec(Strict):
    text: str = DEFAULT_TEXT
    labels: dict[str, LabelDef] = Field(min_length=2)
    min_confidence: float = Field(default=0.45, ge=0.0, le=1.0)
    model: str | None = None
    on_low_confidence: str | None = Field(
        default=None, description="Step to go to when unsure (default: carry on with triage=true)"
    )
    learn: bool = Field(
        default=False,
        description="Learn from people: triage picks, reassignments and shadow decisions of the"
        " route steps that route on this step's label become examples (switchboard examples)",
    )
    learn_after_approval: bool = Field(
        default=False,
        description="With learn: a correction counts only once an owner approves it"
        " (switchboard examples approve ID)",
    )


class ClassifyStep(StepBase):
    KIND: ClassVar[str] = "classify"
    OUTPUT: ClassVar[tuple[str, ...]] = (
        "label",
        "guess",
        "confidence",
        "triage",
        "candidates",
        "rationale",
        "provenance",
        "error",
    )
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {
        "label": "text",
        "guess": "text",
        "confidence": "number",
        "triage": "bool",
        "candidates": "list",
        "rationale": "text",
    }
    classify: ClassifySpec

    def output_choices(self) -> dict[str, tuple[str, ...]]:
        labels = tuple(self.classify.labels)
        return {"label": labels, "guess": labels}

    def jump_targets(self) -> list[Reference]:
        unsure = self.classify.on_low_confidence
        return super().jump_targets() + (
            [(("classify", "on_low_confidence"), unsure)] if unsure else []
        )


EXTRACT_TYPES: dict[str, str] = {
    "str": "str, as written",
    "int": "int",
    "float": "float",
    "bool": "bool (yes/true → True, no/false → False)",
    "date": "str, ISO 8601 (YYYY-MM-DD)",
    "email": "str, the address",
    "money": "Money: compares and computes like a number, renders 12,400.50 EUR; "
    'JSON {"amount": 12400.5, "currency": "EUR"} (connectors/ai/money.py)',
}
"""What each extract field type gives later steps: the one table (docs quote it)."""
VALUE_TYPES: dict[str, ValueType] = {
    "str": "text",
    "int": "number",
    "float": "number",
    "bool": "bool",
    "date": "text",
    "email": "text",
    "money": "money",
}
"""Each extract field type as ``check`` types it in expressions."""


class FieldDef(Strict):
    type: FieldType = "str"
    description: str = ""
    pattern: str | None = Field(
        default=None, description="A regular expression (RE2: linear-time, no lookarounds)"
    )
    required: bool = True


class ExtractSpec(Strict):
    text: str = DEFAULT_TEXT
    fields: dict[str, FieldType | FieldDef] = Field(min_length=1)
    model: str | None = None

    def offline_unfillable(self) -> list[str]:
        """``str`` fields without ``pattern:``: the offline extractor has no rule for them."""
        return [
            name
            for name, d in self.fields.items()
            if (d == "str") or (isinstance(d, FieldDef) and d.type == "str" and not d.pattern)
        ]

    @field_validator("fields")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, field in value.items():
            if not name.isidentifier():
                raise ValueError(f"field name {name!r} must be an identifier")
            if isinstance(field, FieldDef) and field.pattern is not None:
                try:
                    compile_linear(field.pattern)  # the offline extractor runs it on text
                except ValueError as exc:
                    raise ValueError(f"field {name!r}: {exc}") from None
        return value


class ExtractStep(StepBase):
    """Typed fields from text. Output: one key per field, plus ``missing``, ``method``
    and ``provenance``. Each field's value has its type's Python form (``EXTRACT_TYPES``),
    or is ``None`` when the text does not contain it."""

    KIND: ClassVar[str] = "extract"
    OUTPUT: ClassVar[tuple[str, ...]] = ("missing", *PROVENANCE_OUTPUT)
    extract: ExtractSpec

    def outputs(self) -> tuple[str, ...]:
        return (*self.extract.fields, *self.OUTPUT)

    def output_types(self) -> dict[str, ValueType]:
        fields = self.extract.fields.items()
        types = {n: VALUE_TYPES[d if isinstance(d, str) else d.type] for n, d in fields}
        return {**types, "missing": "list"}


class SummarizeSpec(Strict):
    text: str = DEFAULT_TEXT
    max_sentences: int = Field(default=3, ge=1, le=20)
    model: str | None = None


class SummarizeStep(StepBase):
    KIND: ClassVar[str] = "summarize"
    OUTPUT: ClassVar[tuple[str, ...]] = ("text", *PROVENANCE_OUTPUT)
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {"text": "text"}
    summarize: SummarizeSpec
