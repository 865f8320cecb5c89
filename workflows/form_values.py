"""What people entered in a form, checked and typed against its fields.

The bot reads a submitted modal into one raw string per field (``None`` when left
empty) and calls ``parse``; the values come back typed (numbers, ``Money``, ISO
dates, IDs, text) and every problem as ``{field id: one short sentence}``, which
the bot shows under the field (``response_action: errors``). Nothing here knows Slack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connectors.ai.money import Money
from workflows.language.inputs import InputField

MAX_TEXT = 3000
"""Slack's plain_text_input max_length."""
_CODE = re.compile(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])")
_SYMBOLS = frozenset("$€£¥")
MAX_AMOUNT = 32
"""Characters of a written amount with its currency (``EUR 1,234,567,890.00`` is 21)."""
SCANNED = 2000
"""Characters of a request's text ``extract`` reads (the fields are said early, if at all)."""
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_MENTION = {
    "user": re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>"),
    "channel": re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>"),
}


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def parse(fields: list[InputField], raw: Mapping[str, str | None]) -> Parsed:
    parsed = Parsed()
    for spec in fields:
        text = (raw.get(spec.id) or "").strip()
        if not text:
            if spec.required:
                parsed.errors[spec.id] = "Please fill this in."
            else:
                parsed.values[spec.id] = None
            continue
        try:
            parsed.values[spec.id] = _value(spec, text)
        except ValueError as exc:
            parsed.errors[spec.id] = str(exc)
    return parsed


def _value(spec: InputField, text: str) -> Any:
    if spec.type in ("text", "long_text"):
        limit = spec.max_length or MAX_TEXT
        if len(text) > limit:
            raise ValueError(f"At most {limit} characters, please ({len(text)} given).")
        return text
    if spec.type == "number":
        return _bounded(spec, _number(text))
    if spec.type == "money":
        return _money(spec, text)
    if spec.type == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("Not a date (YYYY-MM-DD).") from None
    if spec.type == "select" and text not in spec.option_values():
        raise ValueError("Please choose one of the options.")
    return text  # select, user, channel: the chosen value or ID


def _number(text: str) -> int | float:
    try:
        value = float(text.replace(",", "").replace(" ", ""))
    except ValueError:
        raise ValueError("Not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("Not a number.")
    return int(value) if value.is_integer() and "." not in text else value


def _money(spec: InputField, text: str) -> Money:
    money = Money.parse(text)
    if money is None:
        raise ValueError("Not an amount (e.g. 1,250.00 EUR).")
    if not money.currency and spec.currency:
        money = Money(money.amount, spec.currency)
    if spec.currency and money.currency != spec.currency:
        raise ValueError(f"Please give the amount in {spec.currency}.")
    _bounded(spec, money.amount)
    return money


def _bounded(spec: InputField, value: float) -> Any:
    if spec.min is not None and value < spec.min:
        raise ValueError(f"At least {_plain(spec.min)}, please.")
    if spec.max is not None and value > spec.max:
        raise ValueError(f"At most {_plain(spec.max)}, please.")
    return value


def _plain(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:,}"


def defaults(fields: list[InputField]) -> dict[str, str]:
    """Each field's default as the text the form shows pre-filled."""
    return {f.id: str(f.default) for f in fields if f.default is not None}


def extract(fields: list[InputField], text: str) -> dict[str, str]:
    """What a request typed as one line says about the fields, without any model.

    ``<id>: <value>`` (or ``<id>=<value>``, up to a comma, semicolon or line end) for
    any field; otherwise, for a field that is the only one of its type: an amount
    with a currency (money), an ISO date, a user or channel mention, or a select's
    option named as a word. Only values that ``parse`` accepts are kept.
    """
    found: dict[str, str] = {}
    text = text[:SCANNED]  # on the ack path: a bounded amount of text, whatever was typed
    for spec in fields:
        pair = re.search(rf"(?i)\b{re.escape(spec.id)}\s*[:=]\s*([^,;\n]+)", text)
        if pair:
            found[spec.id] = pair.group(1).strip()
        elif sum(1 for f in fields if f.type == spec.type) == 1:
            guess = _guess(spec, text)
            if guess is not None:
                found[spec.id] = guess
    checked = parse([f for f in fields if f.id in found], found)
    return {key: value for key, value in found.items() if key not in checked.errors}


def _guess(spec: InputField, text: str) -> str | None:
    if spec.type == "money":
        return _amount_with_currency(text)
    if spec.type == "date":
        match = _DATE.search(text)
        return match.group(0) if match else None
    if spec.type in _MENTION:
        match = _MENTION[spec.type].search(text)
        return match.group(1) if match else None
    if spec.type == "select":
        words = set(re.findall(r"[\w-]+", text.lower()))
        named = [o.value for o in spec.choices() if {o.value.lower(), o.label.lower()} & words]
        return named[0] if len(named) == 1 else None
    return None


def _amount_with_currency(text: str) -> str | None:
    """The first ``12,400 EUR`` / ``EUR 12,400`` / ``€640`` in ``text``: token by token,
    each candidate short and with its currency written (a code in capitals or a symbol),
    so the time is linear in the text whatever it holds."""
    tokens = [token.strip(",;()") for token in text.split()]
    for index, token in enumerate(tokens):
        pair = f"{token} {tokens[index + 1]}" if index + 1 < len(tokens) else token
        for candidate in (token, pair):
            marked = _CODE.search(candidate) or any(c in _SYMBOLS for c in candidate)
            if len(candidate) > MAX_AMOUNT or not marked or not any(c.isdigit() for c in candidate):
                continue
            money = Money.parse(candidate)
            if money is not None and money.amount > 0 and _written(money.currency, candidate):
                return candidate
    return None


def _written(currency: str, candidate: str) -> bool:
    """The currency is in the text as written (``for 12,400`` is not 12,400 FOR)."""
    return bool(currency) and (
        bool(re.search(rf"(?<![A-Za-z]){currency}(?![A-Za-z])", candidate))
        or any(c in _SYMBOLS for c in candidate)
    )


def missing(fields: list[InputField], values: Mapping[str, Any]) -> list[str]:
    """Required fields without a value."""
    return [f.id for f in fields if f.required and values.get(f.id) in (None, "")]
