"""What comes back from an OpenAI-compatible server: checked, parsed and costed.

A refusal, a truncated, filtered or empty answer, content that is not JSON or does
not match the schema: each is ``AIInvalidAnswer`` with a short reason and never the
reply's own values (they may echo request text).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .base import AIInvalidAnswer, FieldSpec, LabelSpec, Usage
from .money import Money
from .redact import Redacted

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")

Answer = TypeVar("Answer", bound=BaseModel)


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_million: float = Field(default=0.0, ge=0.0)
    output_per_million: float = Field(default=0.0, ge=0.0)


@dataclass(frozen=True)
class Call:
    content: str
    usage: Usage
    latency_ms: float


def answer_content(provider: str, completion: ChatCompletion) -> str:
    """The first choice's text, or ``AIInvalidAnswer`` saying why there is none to use."""
    choices = completion.choices or []
    if not choices:
        raise AIInvalidAnswer(f"{provider}: response has no choices")
    choice = choices[0]
    if choice.message.refusal:
        raise AIInvalidAnswer(f"{provider}: the model refused")
    if choice.finish_reason == "length":
        raise AIInvalidAnswer(f"{provider}: answer cut off at the token limit")
    if choice.finish_reason == "content_filter":
        raise AIInvalidAnswer(f"{provider}: answer withheld by a content filter")
    content = choice.message.content
    if not content or not content.strip():
        raise AIInvalidAnswer(f"{provider}: empty answer")
    return content


def usage_of(model: str, completion: ChatCompletion, prices: Mapping[str, ModelPrice]) -> Usage:
    """Tokens and their estimated cost; a model without a price costs 0.0."""
    if completion.usage is None:
        return Usage()
    prompt_tokens = completion.usage.prompt_tokens or 0
    completion_tokens = completion.usage.completion_tokens or 0
    # Servers often answer with a dated model name (gpt-4o-mini-2024-07-18).
    price = prices.get(model) or prices.get(completion.model or "")
    cost = 0.0
    if price is not None:
        cost = (
            prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
        ) / 1_000_000
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost)


def parse_answer(
    provider: str, content: str, answer_type: type[Answer], restore: Redacted | None
) -> Answer:
    """The reply as ``answer_type``, with redacted values put back first when ``restore``."""
    try:
        data = json.loads(_strip_code_fence(content))
    except ValueError as exc:
        raise AIInvalidAnswer(f"{provider}: answer is not valid JSON") from exc
    if restore is not None:
        data = _restore_strings(data, restore)
    try:
        return answer_type.model_validate(data)
    except ValidationError as exc:
        # Without the input values: they may echo request text.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise AIInvalidAnswer(f"{provider}: answer does not match the schema ({problems})") from exc


def unique_labels(labels: list[LabelSpec]) -> list[LabelSpec]:
    seen: set[str] = set()
    out = []
    for spec in labels:
        if spec.name and spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def unique_fields(fields: list[FieldSpec]) -> list[FieldSpec]:
    seen: set[str] = set()
    out = []
    for spec in fields:
        if spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def clamp(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def _money_text(amount: Any, currency: Any) -> str | None:
    """``{amount, currency}`` as money's canonical text ("12,400.50 EUR"); the extract step
    parses it back into ``Money``. A currency that is not a code is left out."""
    if not isinstance(amount, int | float) or not math.isfinite(amount):
        return None
    try:
        return str(Money(amount, currency if isinstance(currency, str) else ""))
    except ValueError:
        return str(Money(amount))


def _strip_code_fence(content: str) -> str:
    # Some local models wrap JSON in a markdown fence despite being told not to.
    stripped = content.strip()
    match = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    return match.group(1) if match else stripped


def _restore_strings(data: Any, redacted: Redacted) -> Any:
    if isinstance(data, str):
        return redacted.restore(data)
    if isinstance(data, dict):
        return {key: _restore_strings(value, redacted) for key, value in data.items()}
    if isinstance(data, list):
        return [_restore_strings(value, redacted) for value in data]
    return data


def clean_value(spec: FieldSpec, value: Any) -> str | int | float | bool | None:
    if value is None:
        return None
    if spec.type == "money" and isinstance(value, dict):
        return _money_text(value.get("amount"), value.get("currency"))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        if spec.type == "email" and not _EMAIL_RE.match(stripped):
            # Not an address (or a placeholder that may not be restored): not found.
            return None
        if spec.type == "money":
            # Canonical text, or not found: the extract step turns it into Money.
            money = Money.parse(stripped)
            return str(money) if money is not None else None
        return stripped
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float):
        return value
    return None
