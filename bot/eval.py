"""``switchboard eval``: measure a workflow's classify step on labelled requests.

The workflow comes by name from ``SWITCHBOARD_WORKFLOWS`` or as a path to its YAML
file; the step is its first ``classify`` step unless ``--step`` names one. The data is
CSV with ``text`` and ``label`` columns or JSON lines of ``{"text", "label"}``; a label
that is empty, ``null``, ``triage`` or ``oos`` marks a request no label owns, which
should reach human triage. Every other label must be one of the step's labels.

Each text is classified with the configured provider exactly as the step would (same
labels, examples, model and ``min_confidence``, which ``--min-confidence`` may override)
and scored with ``connectors.ai.evaluation``. The local provider scores the whole set
in batches (the same model and numbers as one ``classify`` call per text, far faster);
latency is then timed on a sample of single ``classify`` calls, the path a live request
takes. Any other provider gets one ``classify`` call per text, a few at a time.

Problems an operator can fix (unknown workflow or step, unreadable data, a label the
step does not have) raise ``EvalError`` with one line naming them.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bot.settings import Settings
from connectors.ai.base import AIError, AIProvider, ClassifyRequest, LabelSpec
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
from connectors.ai.local import LocalProvider
from workflows.language.steps.ai import DEFAULT_TEXT, ClassifySpec, ClassifyStep
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_file, load_folder

TRIAGE_LABELS = frozenset({"", "triage", "oos"})
"""Data labels meaning "no label owns this; people should get it" (compared lower-case)."""
# Texts per batch on the local path: big enough to amortise, small enough for a lively bar.
BATCH = 256
# Single classify calls timed for the latency figures on the batch path.
LATENCY_SAMPLE = 200
# Remote providers: calls in flight at once (the client retries and backs off on 429s).
CONCURRENCY = 8
# Above this many labels the full matrix is unreadable in a terminal: top confusions instead.
MATRIX_MAX_LABELS = 12
TOP_CONFUSIONS = 15


class EvalError(Exception):
    """A problem with the arguments, the workflow or the data; one line, fit for the CLI."""


@dataclass(frozen=True)
class EvalOptions:
    workflow: str
    """A workflow name in ``SWITCHBOARD_WORKFLOWS``, or a path to a YAML file."""
    data: Path | None
    step: str | None = None
    limit: int | None = None
    confusion_png: Path | None = None
    min_confidence: float | None = None


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None
    """``None``: out of scope, should go to triage."""


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


# --- arguments, workflow, step, data -----------------------------------------------------


def check_options(options: EvalOptions) -> None:
    """The checks that need no file: each failure one line."""
    if options.data is None:
        raise EvalError("eval needs --data FILE (CSV with text,label columns, or JSON lines)")
    if options.limit is not None and options.limit < 1:
        raise EvalError(f"--limit must be at least 1, not {options.limit}")
    if options.min_confidence is not None and not 0.0 <= options.min_confidence <= 1.0:
        raise EvalError(f"--min-confidence must be between 0 and 1, not {options.min_confidence}")
    png = options.confusion_png
    if png is not None:
        if png.suffix.lower() != ".png":
            raise EvalError(f"--confusion-png {png}: the file name must end in .png")
        if not png.parent.is_dir():
            raise EvalError(f"--confusion-png {png}: no such folder {png.parent}")


def resolve_workflow(ref: str, folder: Path) -> Workflow:
    """The workflow ``ref`` names: a YAML file if it looks like one, else a name in ``folder``."""
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise EvalError(f"{ref}: no such workflow file")
        workflow, errors = load_file(path, CheckContext())
        if workflow is None:
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise EvalError(f"{errors[0]}{more}")
        return workflow
    result = load_folder(folder, CheckContext())
    if ref in result.workflows:
        return result.workflows[ref]
    known = ", ".join(sorted(result.workflows)) or "none"
    raise EvalError(f"no workflow {ref!r} in {folder} (workflows there: {known})")


def classify_step(workflow: Workflow, step_id: str | None) -> ClassifyStep:
    """The step to measure: ``step_id``, or the workflow's first classify step."""
    steps = [s for s in workflow.steps if isinstance(s, ClassifyStep)]
    if step_id is None:
        if not steps:
            raise EvalError(f"workflow {workflow.name!r} has no classify step")
        return steps[0]
    for step in workflow.steps:
        if step.id == step_id:
            if isinstance(step, ClassifyStep):
                return step
            raise EvalError(f"step {step_id!r} of {workflow.name!r} is not a classify step")
    known = ", ".join(s.id for s in steps) or "none"
    raise EvalError(f"workflow {workflow.name!r} has no step {step_id!r} (classify steps: {known})")


def label_specs(spec: ClassifySpec) -> list[LabelSpec]:
    """The provider's view of the step's labels, built as the classify step builds it."""
    return [
        LabelSpec(
            name=name,
            description=d.description,
            examples=d.examples,
            example_groups=d.example_groups,
        )
        for name, d in spec.labels.items()
    ]


def read_data(path: Path, labels: Sequence[str], limit: int | None = None) -> list[Example]:
    """Labelled texts from CSV (``text,label`` header) or JSON lines, the first ``limit``."""
    if not path.is_file():
        raise EvalError(f"{path}: no such data file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read: {exc}") from None
    suffix = path.suffix.lower()
    jsonl = suffix in (".jsonl", ".ndjson", ".json") or (
        suffix != ".csv" and text.lstrip().startswith("{")
    )
    rows = _jsonl_rows(path, text) if jsonl else _csv_rows(path, text)
    known = set(labels)
    examples: list[Example] = []
    for line, item, raw in rows:
        if limit is not None and len(examples) >= limit:
            break
        if not item.strip():
            raise EvalError(f"{path}:{line}: empty text")
        examples.append(Example(item, _truth(path, line, raw, known, labels)))
    if not examples:
        raise EvalError(f"{path}: no labelled rows")
    return examples


def _truth(
    path: Path, line: int, raw: str | None, known: set[str], labels: Sequence[str]
) -> str | None:
    label = (raw or "").strip()
    if label in known:  # a step's own label wins, even one spelt like "triage"
        return label
    if label.lower() in TRIAGE_LABELS:
        return None
    raise EvalError(
        f"{path}:{line}: label {label!r} is not one of the step's labels "
        f"({', '.join(labels)}); use triage, oos or an empty label for out-of-scope"
    )


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, str, str | None]]:
    rows: list[tuple[int, str, str | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise EvalError(f'{path}:{number}: want an object with a "text" string')
        if "label" not in item:
            raise EvalError(f'{path}:{number}: no "label" (use "triage" for out-of-scope)')
        label = item["label"]
        if label is not None and not isinstance(label, str):
            raise EvalError(f'{path}:{number}: "label" must be a string or null')
        rows.append((number, item["text"], label))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, str, str | None]]:
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "text" not in columns or "label" not in columns:
        raise EvalError(f"{path}: a CSV file needs a header with text and label columns")
    # Header names as written, so " Text" or "LABEL" still find their column.
    text_key = (reader.fieldnames or [])[columns.index("text")]
    label_key = (reader.fieldnames or [])[columns.index("label")]
    rows: list[tuple[int, str, str | None]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row.get(text_key) or "", row.get(label_key)))
    except csv.Error as exc:
        raise EvalError(f"{path}:{reader.line_num}: bad CSV: {exc}") from None
    return rows


# --- classification ----------------------------------------------------------------------


Advance = Callable[[int], None]


async def _score_local(
    provider: LocalProvider,
    labels: list[LabelSpec],
    texts: list[str],
    advance: Advance,
) -> list[tuple[str, float]]:
    """(best label, confidence) per text through the local model, in batches.

    Confidences are rounded as ``LocalProvider.classify`` rounds them, so the threshold
    falls exactly where the step's comparison does.
    """
    answers: list[tuple[str, float]] = []
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        prediction = await asyncio.to_thread(provider.score, labels, chunk)
        confidences = prediction.confidences()
        for row, best in enumerate(confidences.argmax(axis=1)):
            conf = round(float(confidences[row, best]), 4)
            answers.append((prediction.labels[int(best)], conf))
        advance(len(chunk))
    return answers


async def _classify_each(
    provider: AIProvider,
    labels: list[LabelSpec],
    texts: list[str],
    model: str | None,
    advance: Advance,
) -> tuple[list[tuple[str, float]], list[float], int]:
    """One ``classify`` per text, ``CONCURRENCY`` at a time: answers, latencies, failures.

    A text the provider cannot classify counts as ``("", 0.0)``: triage, as in the step.
    """
    gate = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = [math.nan] * len(texts)
    failed = 0

    async def one(i: int) -> tuple[str, float]:
        nonlocal failed
        async with gate:
            started = time.perf_counter()
            try:
                answer = await provider.classify(
                    ClassifyRequest(text=texts[i], labels=labels, model=model)
                )
                result = (answer.label, answer.confidence)
            except AIError:
                failed += 1
                result = ("", 0.0)
            latencies[i] = (time.perf_counter() - started) * 1000
            advance(1)
            return result

    answers = await asyncio.gather(*(one(i) for i in range(len(texts))))
    return list(answers), latencies, failed


async def _time_single_calls(
    provider: LocalProvider, labels: list[LabelSpec], texts: list[str]
) -> list[float]:
    """Milliseconds of single ``classify`` calls on an even spread of ``texts``."""
    step = max(1, len(texts) // LATENCY_SAMPLE)
    timings: list[float] = []
    for text in texts[::step][:LATENCY_SAMPLE]:
        started = time.perf_counter()
        await provider.classify(ClassifyRequest(text=text, labels=labels))
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def evaluate(
    provider: AIProvider,
    workflow: Workflow,
    step: ClassifyStep,
    examples: list[Example],
    *,
    min_confidence: float | None = None,
    console: Console | None = None,
) -> EvalResult:
    """Classify every example as ``step`` would and collect the scored records."""
    spec = step.classify
    labels = label_specs(spec)
    texts = [e.text for e in examples]
    started = time.perf_counter()
    fit_seconds: float | None = None
    failures = 0
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        if isinstance(provider, LocalProvider):
            fitting = progress.add_task("fitting the local model (once per label set)", total=None)
            try:
                await provider.load()
                await asyncio.to_thread(provider.fitted, labels)
            except AIError as exc:
                raise EvalError(f"local AI provider unavailable: {exc}") from None
            fit_seconds = time.perf_counter() - started
            progress.update(fitting, total=1, completed=1)
            task = progress.add_task("classifying", total=len(texts))
            answers = await _score_local(
                provider, labels, texts, lambda n: progress.advance(task, n)
            )
            timing = progress.add_task("timing single requests", total=None)
            latencies = await _time_single_calls(provider, labels, texts)
            progress.update(timing, total=1, completed=1)
            note = f"{len(latencies)} single classify calls"
        else:
            task = progress.add_task(f"classifying via {provider.name}", total=len(texts))
            answers, latencies, failures = await _classify_each(
                provider, labels, texts, spec.model, lambda n: progress.advance(task, n)
            )
            note = f"{len(latencies)} single classify calls"
    records = [
        Scored(truth=e.label, predicted=label, confidence=conf)
        for e, (label, conf) in zip(examples, answers, strict=True)
    ]
    return EvalResult(
        workflow=workflow.name,
        step=step.id,
        provider=provider.name,
        labels=list(spec.labels),
        threshold=spec.min_confidence if min_confidence is None else min_confidence,
        records=records,
        latencies_ms=latencies,
        latency_note=note,
        failures=failures,
        seconds=time.perf_counter() - started,
        fit_seconds=fit_seconds,
    )


# --- report ------------------------------------------------------------------------------


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


# --- the command -------------------------------------------------------------------------


async def run_eval(
    options: EvalOptions,
    settings: Settings,
    *,
    provider: AIProvider | None = None,
    console: Console | None = None,
) -> EvalResult:
    """Everything ``switchboard eval`` does. Arguments, workflow and data are checked before
    any model is loaded; ``provider`` defaults to the one the settings configure."""
    console = console or Console()
    check_options(options)
    assert options.data is not None
    workflow = resolve_workflow(options.workflow, settings.workflows_dir)
    step = classify_step(workflow, options.step)
    examples = read_data(options.data, list(step.classify.labels), options.limit)
    if step.classify.text != DEFAULT_TEXT:
        console.print(
            f"[dim]note: step {step.id!r} classifies {step.classify.text!r}; "
            "each row's text stands in for it here[/]"
        )
    owned = provider is None
    if provider is None:
        from bot.ai import build_ai

        provider = build_ai(settings)
    try:
        result = await evaluate(
            provider,
            workflow,
            step,
            examples,
            min_confidence=options.min_confidence,
            console=console,
        )
    finally:
        if owned:
            await provider.aclose()
    matrix = report(result, console)
    if options.confusion_png is not None:
        title = f"{result.workflow} / {result.step} at min_confidence {result.threshold:g}"
        png = await asyncio.to_thread(render_confusion_png, matrix, title)
        try:
            options.confusion_png.write_bytes(png)
        except OSError as exc:
            raise EvalError(f"--confusion-png {options.confusion_png}: {exc.strerror}") from None
        console.print(f"confusion matrix written to {options.confusion_png}")
    return result
