"""Choosing ``min_confidence`` from data: the trade-off curve and a threshold for a target.

Pure functions over scored records (``evaluation.Scored``). A threshold ``t`` sends a
record to triage when its confidence is below ``t`` (``evaluation.to_triage``), so the
outcome only changes at the records' own confidences: the curve has one point per gap
between neighbouring confidences, placed midway so the threshold never rests exactly on
one record, plus ``0.0`` (nothing held back but unclassifiable records).

Targets, each monotone in the threshold:

``triage-oos=x``    at least ``x`` of out-of-scope records go to triage: the *lowest*
                    such threshold (the most in-scope requests still routed);
``triage-share=x``  at most ``x`` of all records go to triage: the *highest* such
                    threshold (the most out-of-scope requests still caught);
``routed-right=x``  at least ``x`` of in-scope records reach their right label: the
                    *highest* such threshold.

Nothing here knows a data set: the answer comes from the records alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .evaluation import Scored, to_triage

TargetName = Literal["triage-oos", "triage-share", "routed-right"]
TARGETS: tuple[TargetName, ...] = ("triage-oos", "triage-share", "routed-right")
# Thresholds are printed and written into YAML; four places is finer than any data set.
DECIMALS = 4


class TargetError(ValueError):
    """A ``--target`` that cannot be read; the message is one line for the CLI."""


@dataclass(frozen=True)
class Target:
    name: TargetName
    value: float

    def __str__(self) -> str:
        return f"{self.name}={self.value:g}"


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    routed_right: float
    """Share of in-scope records routed to their right label."""
    oos_triaged: float
    """Share of out-of-scope records sent to triage."""
    triage_share: float
    """Share of all records sent to triage."""

    def measure(self, name: TargetName) -> float:
        if name == "triage-oos":
            return self.oos_triaged
        if name == "triage-share":
            return self.triage_share
        return self.routed_right


@dataclass(frozen=True)
class Suggestion:
    target: Target
    point: CurvePoint
    """The suggested threshold and its figures; the closest one when ``met`` is false."""
    met: bool
    measurable: bool = True
    """False when the records hold nothing the target measures (e.g. no out-of-scope)."""


def parse_target(text: str) -> Target:
    """``name=value`` with a known name and a share between 0 and 1 (``0.9`` or ``90%``)."""
    name, sep, raw = text.partition("=")
    name = name.strip().lower()
    known = ", ".join(TARGETS)
    if not sep or name not in TARGETS:
        raise TargetError(f"--target {text!r}: want NAME=VALUE with NAME one of {known}")
    raw = raw.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise TargetError(f"--target {text!r}: {raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise TargetError(f"--target {text!r}: the value must be between 0 and 1 (or 0-100%)")
    return Target(name=_name(name), value=value)


def _name(name: str) -> TargetName:
    for known in TARGETS:
        if known == name:
            return known
    raise TargetError(name)  # unreachable: parse_target checked it


def curve(records: Sequence[Scored]) -> list[CurvePoint]:
    """Every distinct outcome, by rising threshold (at most one point per record)."""
    confidences = sorted({r.confidence for r in records if r.predicted})
    cuts = [0.0]
    for low, high in itertools.pairwise(confidences):
        cuts.append(round((low + high) / 2, DECIMALS))
    if confidences and confidences[-1] < 1.0:
        cuts.append(round((confidences[-1] + 1.0) / 2, DECIMALS))
    return [point_at(records, cut) for cut in dict.fromkeys(cuts)]


def point_at(records: Sequence[Scored], threshold: float) -> CurvePoint:
    n_in = sum(r.truth is not None for r in records)
    n_out = len(records) - n_in
    right = sum(
        r.truth is not None and r.predicted == r.truth and not to_triage(r, threshold)
        for r in records
    )
    caught = sum(r.truth is None and to_triage(r, threshold) for r in records)
    held = sum(to_triage(r, threshold) for r in records)
    return CurvePoint(
        threshold=threshold,
        routed_right=right / n_in if n_in else 0.0,
        oos_triaged=caught / n_out if n_out else 0.0,
        triage_share=held / len(records) if records else 0.0,
    )


def suggest(records: Sequence[Scored], target: Target) -> Suggestion:
    """The threshold meeting ``target`` that gives up least on the other measures, or the
    closest one to meeting it (and ``met=False``) when none does."""
    points = curve(records)
    if not points:
        points = [point_at(records, 0.0)]
    measurable = _measurable(records, target.name)
    if target.name == "triage-share":
        meeting = [p for p in points if p.triage_share <= target.value]
        if meeting:
            return Suggestion(target, max(meeting, key=lambda p: p.threshold), True, measurable)
        return Suggestion(target, min(points, key=lambda p: (p.triage_share, p.threshold)), False)
    # Out-of-scope catch rises with the threshold: take the lowest; routing right falls.
    pick = min if target.name == "triage-oos" else max
    meeting = [p for p in points if p.measure(target.name) >= target.value]
    if meeting and measurable:
        return Suggestion(target, pick(meeting, key=lambda p: p.threshold), True)
    best = max(p.measure(target.name) for p in points)
    closest = [p for p in points if p.measure(target.name) == best]
    return Suggestion(target, pick(closest, key=lambda p: p.threshold), False, measurable)


def _measurable(records: Sequence[Scored], name: TargetName) -> bool:
    if name == "triage-oos":
        return any(r.truth is None for r in records)
    if name == "routed-right":
        return any(r.truth is not None for r in records)
    return bool(records)


def grid(marks: Sequence[float], step: float = 0.05) -> list[float]:
    """Thresholds for a table a person reads: every ``step`` from 0 to 1, plus ``marks``."""
    n = round(1 / step)
    return sorted({round(i * step, DECIMALS) for i in range(n + 1)} | set(marks))
