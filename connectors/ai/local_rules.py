"""Offline field extraction by rules, and extractive summaries, for the local provider.

Extraction never guesses: a field is filled only when its own pattern (``FieldSpec.pattern``)
or the built-in pattern for its type matches; a required field that matches nothing is
reported in ``missing``. Summaries pick the sentences most similar to the rest of the
text (TF-IDF cosine centrality) and keep them in their original order.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from connectors.ai.base import FieldSpec
from connectors.ai.local_classifier import Tfidf
from connectors.ai.money import Money, parse_amount
from connectors.patterns import compile_linear

Value = str | int | float | bool | None

_CURRENCY = r"(?:[A-Z]{3}|[$€£¥])"
_NUMBER = r"\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"

# One group each; the first pattern of a type that matches wins.
BUILTIN_PATTERNS: dict[str, list[str]] = {
    "money": [
        rf"({_CURRENCY}\s?(?:{_NUMBER})(?:\s?[kKmM]\b)?)",
        rf"((?:{_NUMBER})(?:\s?[kKmM]\b)?\s?{_CURRENCY})(?![A-Za-z])",
    ],
    "email": [r"\b([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"],
    "date": [
        r"\b(\d{4}-\d{2}-\d{2})\b",
        r"\b(\d{1,2}/\d{1,2}/\d{4})\b",
        rf"(?i)\b(\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{4}})\b",
        rf"(?i)\b((?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})\b",
    ],
    "int": [r"(?<![\w.,])(-?\d{1,3}(?:,\d{3})+|-?\d+)(?![\w.,]\d)"],
    "float": [r"(?<![\w.])(-?\d+(?:,\d{3})*(?:\.\d+)?)(?![\w])"],
    "bool": [r"(?i)\b(yes|no|true|false)\b"],
}


def _to_date(raw: str) -> str | None:
    cleaned = re.sub(r"(\d)(st|nd|rd|th)", r"\1", raw.replace(",", "").replace(".", ""))
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _convert(raw: str, spec: FieldSpec) -> Value:
    raw = raw.strip()
    if spec.type in ("int", "float"):
        number = parse_amount(raw)
        if number is None:
            return None
        return int(number) if spec.type == "int" and number.is_integer() else number
    if spec.type == "bool":
        return raw.lower() in ("yes", "true", "y", "1")
    if spec.type == "date":
        return _to_date(raw) or (raw if spec.pattern else None)
    if spec.type == "money":
        # Canonical text ("12,400.00 EUR"); the extract step makes it Money (money.py).
        money = Money.parse(raw)
        return str(money) if money is not None else None
    return raw


def extract_fields(text: str, fields: list[FieldSpec]) -> tuple[dict[str, Value], list[str]]:
    """(values, missing required field names). Absent optional fields are ``None``."""
    values: dict[str, Value] = {}
    missing: list[str] = []
    for spec in fields:
        # An author's pattern runs on RE2 (linear in the text); ours are tested, on ``re``.
        patterns = (
            [compile_linear(spec.pattern)]
            if spec.pattern
            else [re.compile(p) for p in BUILTIN_PATTERNS.get(spec.type, [])]
        )
        value: Value = None
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                raw = match.group(1) if match.groups() else match.group(0)
                value = _convert(raw, spec)
                if value is not None:
                    break
        values[spec.name] = value
        if value is None and spec.required:
            missing.append(spec.name)
    return values, missing


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n\s*\n|\n(?=\s*[-*•]\s)")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def extractive_summary(text: str, max_sentences: int) -> str:
    """The ``max_sentences`` most central sentences, in the order they were written."""
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return " ".join(sentences)
    vectors = Tfidf(sentences).transform(sentences)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    centrality = similarity.sum(axis=1)
    # A small lead bonus: openings usually state the request; it also breaks ties.
    centrality += 0.05 * centrality.max() * (np.arange(len(sentences)) == 0)
    chosen = sorted(np.argsort(-centrality, kind="stable")[:max_sentences])
    return " ".join(sentences[i] for i in chosen)
