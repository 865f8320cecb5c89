"""Scoring for classification and routing runs: pure functions over (truth, prediction,
confidence) records, shared by ``bench/local_ai_eval.py`` and ``switchboard eval``.

A record whose ``truth`` is ``None`` is out of scope: no label owns it, and the right
outcome is human triage (confidence below the threshold). A record whose ``predicted`` is
empty is one the provider could not classify at all: it goes to triage whatever the
threshold, as the classify step sends it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    truth: str | None
    predicted: str
    confidence: float


@dataclass(frozen=True)
class LabelStats:
    label: str
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class TriageReport:
    threshold: float
    in_scope_routed: float
    """Share of in-scope records routed to their right label (correct and at/above threshold)."""
    in_scope_triaged: float
    """Share of in-scope records sent to triage (below threshold)."""
    out_of_scope_triaged: float
    """Share of out-of-scope records sent to triage."""
    in_scope: int
    out_of_scope: int


def accuracy(records: Iterable[Scored]) -> float:
    """Share of in-scope records whose top prediction is right (thresholds ignored)."""
    hits = total = 0
    for r in records:
        if r.truth is not None:
            total += 1
            hits += r.predicted == r.truth
    return hits / total if total else 0.0


def per_label(records: Sequence[Scored]) -> list[LabelStats]:
    """Precision and recall per label over in-scope records, labels sorted by name."""
    in_scope = [r for r in records if r.truth is not None]
    labels = sorted({r.truth for r in in_scope if r.truth} | {r.predicted for r in in_scope})
    stats: list[LabelStats] = []
    for label in labels:
        tp = sum(r.truth == label and r.predicted == label for r in in_scope)
        predicted = sum(r.predicted == label for r in in_scope)
        support = sum(r.truth == label for r in in_scope)
        stats.append(
            LabelStats(
                label=label,
                precision=tp / predicted if predicted else 0.0,
                recall=tp / support if support else 0.0,
                support=support,
            )
        )
    return stats


def confusion_matrix(records: Sequence[Scored]) -> tuple[list[str], list[list[int]]]:
    """(labels, matrix) with ``matrix[i][j]`` = in-scope records of label i predicted as j."""
    in_scope = [r for r in records if r.truth is not None]
    labels = sorted({r.truth for r in in_scope if r.truth} | {r.predicted for r in in_scope})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for r in in_scope:
        assert r.truth is not None
        matrix[index[r.truth]][index[r.predicted]] += 1
    return labels, matrix


def triage(records: Sequence[Scored], threshold: float) -> TriageReport:
    """What a ``min_confidence`` of ``threshold`` does: routed, triaged, by scope."""
    ins = [r for r in records if r.truth is not None]
    oos = [r for r in records if r.truth is None]
    routed = sum(r.predicted == r.truth and not to_triage(r, threshold) for r in ins)
    held = sum(to_triage(r, threshold) for r in ins)
    caught = sum(to_triage(r, threshold) for r in oos)
    return TriageReport(
        threshold=threshold,
        in_scope_routed=routed / len(ins) if ins else 0.0,
        in_scope_triaged=held / len(ins) if ins else 0.0,
        out_of_scope_triaged=caught / len(oos) if oos else 0.0,
        in_scope=len(ins),
        out_of_scope=len(oos),
    )


def to_triage(record: Scored, threshold: float) -> bool:
    """Whether a ``min_confidence`` of ``threshold`` sends ``record`` to triage."""
    return not record.predicted or record.confidence < threshold


TRIAGE = "triage"
"""The routing matrix's column for records sent to people."""
OUT_OF_SCOPE = "(out of scope)"
"""The routing matrix's row for records no label owns."""


@dataclass(frozen=True)
class RoutingReport:
    threshold: float
    total: int
    triaged: float
    """Share of all records (in scope or not) sent to triage."""
    routed: int
    """Records routed to a label (not triaged)."""
    routed_accuracy: float
    """Share of routed records that reached their right label; out-of-scope ones are wrong."""


def routing(records: Sequence[Scored], threshold: float) -> RoutingReport:
    """What happens to every record at ``threshold``: how many go to people, and how right
    the automatic routing is for the rest."""
    routed = [r for r in records if not to_triage(r, threshold)]
    right = sum(r.truth is not None and r.predicted == r.truth for r in routed)
    return RoutingReport(
        threshold=threshold,
        total=len(records),
        triaged=(len(records) - len(routed)) / len(records) if records else 0.0,
        routed=len(routed),
        routed_accuracy=right / len(routed) if routed else 0.0,
    )


@dataclass(frozen=True)
class RoutingMatrix:
    rows: list[str]
    """Truth: the labels, then ``OUT_OF_SCOPE`` when any record is out of scope."""
    columns: list[str]
    """Where records went: the labels, then ``TRIAGE``."""
    counts: list[list[int]]


def routing_matrix(
    records: Sequence[Scored], threshold: float, labels: Sequence[str] = ()
) -> RoutingMatrix:
    """Confusion of the routing *decision* at ``threshold``: ``counts[i][j]`` records of
    truth ``rows[i]`` went to ``columns[j]``. ``labels`` fixes the order (and lists labels
    that never occur); labels only seen in the records follow, sorted."""
    seen = {r.truth for r in records if r.truth} | {r.predicted for r in records if r.predicted}
    names = list(dict.fromkeys([*labels, *sorted(seen - set(labels))]))
    rows = names + ([OUT_OF_SCOPE] if any(r.truth is None for r in records) else [])
    columns = [*names, TRIAGE]
    row_of = {name: i for i, name in enumerate(rows)}
    column_of = {name: j for j, name in enumerate(columns)}
    counts = [[0] * len(columns) for _ in rows]
    for r in records:
        went = TRIAGE if to_triage(r, threshold) else r.predicted
        counts[row_of[r.truth if r.truth is not None else OUT_OF_SCOPE]][column_of[went]] += 1
    return RoutingMatrix(rows=rows, columns=columns, counts=counts)


def top_confusions(matrix: RoutingMatrix, n: int = 10) -> list[tuple[str, str, int]]:
    """The ``n`` largest cells off the diagonal as (truth, went to, count), largest first.

    Out-of-scope records sent to triage are right, so they are not confusions.
    """
    cells = [
        (truth, went, count)
        for truth, row in zip(matrix.rows, matrix.counts, strict=True)
        for went, count in zip(matrix.columns, row, strict=True)
        if count and went != truth and not (truth == OUT_OF_SCOPE and went == TRIAGE)
    ]
    return sorted(cells, key=lambda cell: (-cell[2], cell[0], cell[1]))[:n]


def tune_threshold(records: Sequence[Scored]) -> TriageReport:
    """The threshold maximising (in-scope routed right) + (out-of-scope triaged).

    Both shares count equally whatever the mix, so a small out-of-scope sample is not
    drowned by in-scope volume. Cuts sit midway between neighbouring confidences, so the
    threshold does not rest exactly on one validation record.
    """
    n_in = sum(r.truth is not None for r in records) or 1
    n_out = sum(r.truth is None for r in records) or 1
    ordered = sorted(records, key=lambda r: r.confidence)
    # Sweep upwards: a cut above record i triages it; in-scope-right records above stay routed.
    routed = sum(r.truth is not None and r.predicted == r.truth for r in ordered)
    caught = 0
    best_score, best_cut = routed / n_in, 0.0
    for i, r in enumerate(ordered):
        if r.truth is None:
            caught += 1
        elif r.predicted == r.truth:
            routed -= 1
        upper = ordered[i + 1].confidence if i + 1 < len(ordered) else min(1.0, r.confidence + 1e-6)
        if upper == r.confidence:
            continue
        score = routed / n_in + caught / n_out
        if score > best_score:
            best_score, best_cut = score, (r.confidence + upper) / 2
    return triage(records, best_cut)


def expected_calibration_error(records: Sequence[Scored], bins: int = 10) -> float:
    """Mean |confidence - share right| over equal-width confidence bins, weighted by size.

    An out-of-scope record counts as wrong: whatever it was routed to, it was not its owner.
    """
    if not records:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            r for r in records if lo <= r.confidence < hi or (b == bins - 1 and r.confidence == 1.0)
        ]
        if members:
            mean_conf = sum(r.confidence for r in members) / len(members)
            right = sum(r.truth is not None and r.predicted == r.truth for r in members) / len(
                members
            )
            total += len(members) * abs(mean_conf - right)
    return total / len(records)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
