"""What is sent to an OpenAI-compatible server: the answer schemas and the response format.

The schemas are generated from pydantic models (for classify the label is an enum of
exactly the allowed labels); the same models validate the replies in
``openai_parse.py``, so a server that ignores the schema cannot smuggle an unknown
label or a malformed value through.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any, Literal

from openai.types.chat.completion_create_params import ResponseFormat
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from . import prompts
from .base import FieldType
from .money import Money


class _CandidateAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    confidence: float


class ClassifyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The best label, exactly as listed.")
    confidence: float = Field(description="Probability from 0 to 1 that the label is right.")
    rationale: str = Field(description="One short sentence.")
    candidates: list[_CandidateAnswer] = Field(description="Up to three labels, best first.")


@functools.lru_cache(maxsize=256)
def classify_answer_model(labels: tuple[str, ...]) -> type[ClassifyAnswer]:
    # Literal over the allowed labels: the schema carries them as an enum, and the
    # same model rejects any other label in the reply.
    allowed: Any = Literal[labels]
    candidate = create_model(
        "Candidate",
        __base__=_CandidateAnswer,
        label=(allowed, ...),
    )
    return create_model(
        "Classification",
        __base__=ClassifyAnswer,
        label=(allowed, Field(description="The best label, exactly as listed.")),
        candidates=(list[candidate], Field(description="Up to three labels, best first.")),
    )


class MoneyAnswer(BaseModel):
    """A money field as the model is asked it: the currency is part of the answer."""

    model_config = ConfigDict(extra="forbid")
    amount: float = Field(description="The amount as a number: 12400.5 for '12,400.50'.")
    currency: str | None = Field(
        description="Its ISO 4217 code (EUR, USD, GBP, ...), or null when the text names none."
    )


def _lenient_money(value: Any) -> Any:
    """A server that ignores the schema may answer 640 or "640 EUR": still money."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"amount": value, "currency": None}
    if isinstance(value, str) and (parsed := Money.parse(value)) is not None:
        return {"amount": parsed.amount, "currency": parsed.currency or None}
    return value


_FIELD_TYPES: dict[FieldType, tuple[Any, str]] = {
    "str": (str, ""),
    "int": (int, "A whole number."),
    "float": (float, "A number."),
    "bool": (bool, "true or false."),
    "date": (dt.date, "A date, YYYY-MM-DD."),
    # Checked after placeholders are restored, so a redacted address still counts.
    "email": (str, "An e-mail address."),
    "money": (
        Annotated[MoneyAnswer, BeforeValidator(_lenient_money)],
        "The amount and its currency.",
    ),
}


@functools.lru_cache(maxsize=256)
def extract_answer_model(fields: tuple[tuple[str, FieldType, str], ...]) -> type[BaseModel]:
    # Python names f0, f1, … with the declared names as aliases: a field may be
    # called anything a workflow author likes ("PO number", "class", …).
    definitions: dict[str, Any] = {}
    for i, (name, ftype, description) in enumerate(fields):
        py_type, hint = _FIELD_TYPES[ftype]
        text = " ".join(part for part in (description, hint) if part) or None
        definitions[f"f{i}"] = (py_type | None, Field(alias=name, description=text))
    model: type[BaseModel] = create_model(
        "Extraction",
        __config__=ConfigDict(extra="forbid", coerce_numbers_to_str=True),
        **definitions,
    )
    return model


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the subset strict structured outputs accept.

    Every object closed (``additionalProperties: false``) with every property
    required (optional values are nullable instead), references inlined, and
    titles and defaults dropped.
    """
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "default"):
                continue
            if key == "properties":
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key == "const":
                out["enum"] = [value]
            else:
                out[key] = walk(value)
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        return out

    result: dict[str, Any] = walk(schema)
    return result


def response_format(
    mode: Literal["json_schema", "json_object"], name: str, schema: dict[str, Any], system: str
) -> tuple[ResponseFormat, str]:
    """The ``response_format`` for ``mode`` and the system prompt that goes with it.

    ``json_object`` servers cannot take a schema: it goes into the instructions instead.
    """
    if mode == "json_schema":
        strict: ResponseFormat = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
        return strict, system
    return {"type": "json_object"}, system + prompts.json_object_suffix(schema)
