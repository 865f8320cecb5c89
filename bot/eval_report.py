"""``switchboard eval``'s report: the result of a run, its tables and the confusion PNG."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

from connectors.ai.evaluation import (
    OUT_OF_SCOPE,
    TRIAGE,
    RoutingMatrix,
    Scored,
    accuracy,
    per_label,
    percentile,
    routing,
    routing_matrix,
    top_confusions,
    triage,
)
from connectors.ai.thresholds import CurvePoint, Suggestion, grid, point_at

# Above this many labels the full matrix is unreadable in a terminal: top confusions instead.
MATRIX_MAX_LABELS = 12
TOP_CONFUSIONS = 15


@dataclass
class EvalResult:
    workflow: str
    step: str
    provider: str
    labels: list[str]
    threshold: float
    records: list[Scored]
    latencies_ms: list[float]
    latency_note: str
    failures: int
    """Texts the provider could not classify at all (they went to triage)."""
    seconds: float
    """Wall time of the whole run, the one-off fit included."""
    fit_seconds: float | None = None


def _pct(value: float) -> str:
    return f"{value:.2%}"


def summary_table(result: EvalResult) -> Table:
    """The headline numbers, one per row."""
    records = result.records
    n_in = sum(r.truth is not None for r in records)
    n_out = len(records) - n_in
    at = triage(records, result.threshold)
    routed = routing(records, result.threshold)
    table = Table(
        title=f"{result.workflow} / {result.step} via {result.provider}, "
        f"min_confidence {result.threshold:g}",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("measure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("of", justify="right", style="dim")
    table.add_row("rows", f"{len(records):,}", f"{n_in:,} in / {n_out:,} out of scope")
    in_scope = [r for r in records if r.truth is not None]
    table.add_row(
        "accuracy (in scope, best label)",
        _pct(accuracy(in_scope)) if n_in else "n/a",
        f"{n_in:,}",
    )
    table.add_row("sent to triage (all rows)", _pct(routed.triaged), f"{len(records):,}")
    table.add_row(
        "accuracy of the rest (routed)",
        _pct(routed.routed_accuracy) if routed.routed else "n/a",
        f"{routed.routed:,}",
    )
    table.add_row(
        "in scope routed to the right label",
        _pct(at.in_scope_routed) if n_in else "n/a",
        f"{n_in:,}",
    )
    table.add_row(
        "in scope sent to triage", _pct(at.in_scope_triaged) if n_in else "n/a", f"{n_in:,}"
    )
    table.add_row(
        "out of scope sent to triage",
        _pct(at.out_of_scope_triaged) if n_out else "n/a",
        f"{n_out:,}" if n_out else "no out-of-scope rows",
    )
    timings = [t for t in result.latencies_ms if not math.isnan(t)]
    if timings:
        table.add_row(
            "latency p50 / p99",
            f"{percentile(timings, 50):.1f} / {percentile(timings, 99):.1f} ms",
            result.latency_note,
        )
    fit = f"one-off fit {result.fit_seconds:.1f} s" if result.fit_seconds is not None else ""
    table.add_row("wall time", f"{result.seconds:.1f} s", fit)
    if result.failures:
        table.add_row("provider failures (to triage)", f"{result.failures:,}", "")
    return table


def label_table(result: EvalResult, matrix: RoutingMatrix) -> Table:
    """Precision and recall of the best label per label, and how many went to triage."""
    triaged = {row: counts[-1] for row, counts in zip(matrix.rows, matrix.counts, strict=True)}
    table = Table(title="per label (best label, in scope)", box=box.SIMPLE_HEAD)
    table.add_column("label")
    for name in ("precision", "recall", "support", "to triage"):
        table.add_column(name, justify="right")
    for stats in per_label(result.records):
        table.add_row(
            stats.label,
            f"{stats.precision:.3f}",
            f"{stats.recall:.3f}",
            f"{stats.support:,}",
            f"{triaged.get(stats.label, 0):,}",
        )
    return table


def matrix_table(matrix: RoutingMatrix) -> Table:
    """The routing matrix, labels numbered so ten or so columns fit a terminal."""
    number = {name: str(i) for i, name in enumerate(matrix.columns[:-1], 1)}
    table = Table(
        title="routed to (rows: truth; T: triage)",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
    )
    table.add_column("truth", no_wrap=True)
    for name in matrix.columns:
        table.add_column("T" if name == TRIAGE else number[name], justify="right")
    for truth, counts in zip(matrix.rows, matrix.counts, strict=True):
        cells = []
        for went, count in zip(matrix.columns, counts, strict=True):
            right = went == truth or (truth == OUT_OF_SCOPE and went == TRIAGE)
            style = "green" if right else ("red" if count and went != TRIAGE else "")
            text = str(count) if count else "·"
            cells.append(f"[{style}]{text}[/]" if style else text)
        head = truth if truth == OUT_OF_SCOPE else f"{number[truth]} {truth}"
        table.add_row(head, *cells)
    return table


def confusions_table(matrix: RoutingMatrix) -> Table:
    table = Table(title=f"top confusions (of {len(matrix.rows)} truths)", box=box.SIMPLE_HEAD)
    table.add_column("truth")
    table.add_column("went to")
    table.add_column("count", justify="right")
    for truth, went, count in top_confusions(matrix, TOP_CONFUSIONS):
        table.add_row(truth, went, f"{count:,}")
    return table


def report(result: EvalResult, console: Console) -> RoutingMatrix:
    """Print every table; returns the routing matrix (for the PNG)."""
    matrix = routing_matrix(result.records, result.threshold, result.labels)
    console.print(summary_table(result))
    console.print(label_table(result, matrix))
    if len(result.labels) <= MATRIX_MAX_LABELS:
        console.print(matrix_table(matrix))
    else:
        console.print(confusions_table(matrix))
    return matrix


def render_confusion_png(matrix: RoutingMatrix, title: str) -> bytes:
    """A heat map of the routing matrix: colour is the share of the row, cells show counts."""
    import io

    # Imported here: matplotlib is slow to import and only this option needs it. The
    # object API over the Agg canvas needs no display and touches no pyplot state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows, n_cols = len(matrix.rows), len(matrix.columns)
    side = max(4.0, 0.55 * n_cols + 2.5)
    figure = Figure(figsize=(side + 1.0, max(3.5, 0.5 * n_rows + 2.0)), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    shares = [[c / max(1, sum(row)) for c in row] for row in matrix.counts]
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=axis, label="share of the row")
    axis.set_xticks(range(n_cols), matrix.columns, rotation=45, ha="right", fontsize="small")
    axis.set_yticks(range(n_rows), matrix.rows, fontsize="small")
    axis.set_xlabel("routed to")
    axis.set_ylabel("truth")
    if n_rows * n_cols <= 400:  # numbers in every cell stay legible up to about 20 x 20
        for i, row in enumerate(matrix.counts):
            for j, count in enumerate(row):
                if count:
                    dark = shares[i][j] > 0.6
                    axis.text(
                        j,
                        i,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize="x-small",
                        color="white" if dark else "black",
                    )
    axis.set_title(title, fontsize="medium")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# --- threshold suggestion ------------------------------------------------------------------


def suggestion_lines(suggestion: Suggestion, current: float | None) -> list[str]:
    """What to set and what it gives, or why no threshold meets the target."""
    point, target = suggestion.point, suggestion.target
    figures = (
        f"in scope routed right {_pct(point.routed_right)}, "
        f"out of scope to triage {_pct(point.oos_triaged)}, "
        f"triage share {_pct(point.triage_share)}"
    )
    if not suggestion.measurable:
        what = "out-of-scope" if target.name == "triage-oos" else "in-scope"
        head = f"target {target}: the data has no {what} rows, so nothing measures it"
        return [head, f"closest: min_confidence {point.threshold:g} ({figures})"]
    if not suggestion.met:
        return [
            f"no threshold meets target {target}",
            f"closest: min_confidence {point.threshold:g} ({figures})",
        ]
    now = f"; now {current:g}" if current is not None else ""
    return [f"suggested min_confidence: {point.threshold:g} (meets {target}{now})", figures]


def curve_table(
    records: list[Scored], suggestion: Suggestion | None, current: float | None
) -> Table:
    """Threshold -> the three shares, every 0.05 plus the current and suggested values."""
    marks = ([current] if current is not None else []) + (
        [suggestion.point.threshold] if suggestion else []
    )
    table = Table(title="threshold trade-off", box=box.SIMPLE_HEAD)
    table.add_column("min_confidence", justify="right")
    table.add_column("in scope routed right", justify="right")
    table.add_column("out of scope to triage", justify="right")
    table.add_column("triage share", justify="right")
    table.add_column("")
    for threshold in grid(marks):
        point = point_at(records, threshold)
        note = []
        if suggestion is not None and threshold == suggestion.point.threshold:
            note.append("suggested" if suggestion.met else "closest")
        if threshold == current:
            note.append("current")
        style = "bold" if note else None
        table.add_row(
            f"{threshold:g}",
            _pct(point.routed_right),
            _pct(point.oos_triaged),
            _pct(point.triage_share),
            ", ".join(note),
            style=style,
        )
    return table


def render_curve_png(points: list[CurvePoint], marked: float | None, title: str) -> bytes:
    """The three shares against the threshold, the suggested threshold as a dashed line."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    xs = [p.threshold for p in points]
    for values, name in (
        ([p.routed_right for p in points], "in scope routed right"),
        ([p.oos_triaged for p in points], "out of scope to triage"),
        ([p.triage_share for p in points], "triage share"),
    ):
        axis.step(xs, values, where="post", label=name)
    if marked is not None:
        axis.axvline(marked, linestyle="--", color="grey", label=f"min_confidence {marked:g}")
    axis.set_xlim(0.0, 1.0)
    axis.set_ylim(0.0, 1.02)
    axis.set_xlabel("min_confidence")
    axis.set_ylabel("share")
    axis.legend(loc="best", fontsize="small")
    axis.set_title(title, fontsize="medium")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
