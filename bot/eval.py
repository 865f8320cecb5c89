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
import math
import time
from collections.abc import Callable

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

from bot.eval_data import (
    EvalError,
    EvalOptions,
    Example,
    check_options,
    classify_step,
    label_specs,
    read_data,
    read_scores,
    resolve_workflow,
    write_scores,
)
from bot.eval_report import (
    EvalResult,
    curve_table,
    render_confusion_png,
    render_curve_png,
    report,
    suggestion_lines,
)
from bot.settings import Settings
from connectors.ai.base import AIError, AIProvider, ClassifyRequest, LabelSpec
from connectors.ai.evaluation import Scored, tune_threshold
from connectors.ai.local import LocalProvider
from connectors.ai.thresholds import Suggestion, curve, parse_target, suggest
from workflows.language.steps.ai import DEFAULT_TEXT, ClassifyStep
from workflows.language.workflow import Workflow

# The CLI imports these from here.
__all__ = ["EvalError", "EvalOptions", "EvalResult", "evaluate", "run_eval"]

# Texts per batch on the local path: big enough to amortise, small enough for a lively bar.
BATCH = 256
# Single classify calls timed for the latency figures on the batch path.
LATENCY_SAMPLE = 200
# Remote providers: calls in flight at once (the client retries and backs off on 429s).
CONCURRENCY = 8


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


Answers = list[tuple[str, float]]


def _progress(console: Console | None) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


async def _run_local(
    provider: LocalProvider, labels: list[LabelSpec], texts: list[str], progress: Progress
) -> tuple[Answers, list[float], float]:
    """The batch path: answers, single-call latencies and the seconds the one-off fit took."""
    started = time.perf_counter()
    fitting = progress.add_task("fitting the local model (once per label set)", total=None)
    try:
        await provider.load()
        await asyncio.to_thread(provider.fitted, labels)
    except AIError as exc:
        raise EvalError(f"local AI provider unavailable: {exc}") from None
    fit_seconds = time.perf_counter() - started
    progress.update(fitting, total=1, completed=1)
    task = progress.add_task("classifying", total=len(texts))
    answers = await _score_local(provider, labels, texts, lambda n: progress.advance(task, n))
    timing = progress.add_task("timing single requests", total=None)
    latencies = await _time_single_calls(provider, labels, texts)
    progress.update(timing, total=1, completed=1)
    return answers, latencies, fit_seconds


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
    with _progress(console) as progress:
        if isinstance(provider, LocalProvider):
            answers, latencies, fit_seconds = await _run_local(provider, labels, texts, progress)
        else:
            task = progress.add_task(f"classifying via {provider.name}", total=len(texts))
            answers, latencies, failures = await _classify_each(
                provider, labels, texts, spec.model, lambda n: progress.advance(task, n)
            )
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
        latency_note=f"{len(latencies)} single classify calls",
        failures=failures,
        seconds=time.perf_counter() - started,
        fit_seconds=fit_seconds,
    )


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
    workflow = resolve_workflow(options.workflow, settings.workflows_dir)
    step = classify_step(workflow, options.step)
    if options.scores is not None:
        result = _saved(workflow, step, options)
    else:
        result = await _classify_data(options, settings, workflow, step, provider, console)
    if options.save_scores is not None:
        write_scores(options.save_scores, result.records)
        console.print(f"scores written to {options.save_scores}")
    matrix = report(result, console)
    if options.confusion_png is not None:
        title = f"{result.workflow} / {result.step} at min_confidence {result.threshold:g}"
        png = await asyncio.to_thread(render_confusion_png, matrix, title)
        try:
            options.confusion_png.write_bytes(png)
        except OSError as exc:
            raise EvalError(f"--confusion-png {options.confusion_png}: {exc.strerror}") from None
        console.print(f"confusion matrix written to {options.confusion_png}")
    if options.suggest_threshold:
        await _suggest(result, options, console)
    return result


async def _classify_data(
    options: EvalOptions,
    settings: Settings,
    workflow: Workflow,
    step: ClassifyStep,
    provider: AIProvider | None,
    console: Console,
) -> EvalResult:
    assert options.data is not None
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
        return await evaluate(
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


def _saved(workflow: Workflow, step: ClassifyStep, options: EvalOptions) -> EvalResult:
    """A result from ``--scores``: the records as saved, no provider, no timings."""
    assert options.scores is not None
    started = time.perf_counter()
    records = read_scores(options.scores, list(step.classify.labels), options.limit)
    return EvalResult(
        workflow=workflow.name,
        step=step.id,
        provider=f"saved scores {options.scores.name}",
        labels=list(step.classify.labels),
        threshold=step.classify.min_confidence
        if options.min_confidence is None
        else options.min_confidence,
        records=records,
        latencies_ms=[],
        latency_note="",
        failures=sum(not r.predicted for r in records),
        seconds=time.perf_counter() - started,
    )


async def _suggest(result: EvalResult, options: EvalOptions, console: Console) -> None:
    """The threshold for ``--target`` (or the balanced one), its curve table and plot."""
    if options.target is not None:
        suggestion: Suggestion | None = suggest(result.records, parse_target(options.target))
        assert suggestion is not None
        chosen = suggestion.point.threshold
        lines = suggestion_lines(suggestion, result.threshold)
    else:
        suggestion = None
        balanced = tune_threshold(result.records)
        chosen = balanced.threshold
        lines = [
            f"suggested min_confidence: {chosen:g} (balanced: in scope routed right + "
            f"out of scope to triage, highest sum; now {result.threshold:g})",
            "give --target triage-oos=X, triage-share=X or routed-right=X for another aim",
        ]
    console.print(curve_table(result.records, suggestion, result.threshold))
    for line in lines:
        console.print(line)
    if options.plot is not None:
        title = f"{result.workflow} / {result.step}: threshold trade-off"
        png = await asyncio.to_thread(render_curve_png, curve(result.records), chosen, title)
        try:
            options.plot.write_bytes(png)
        except OSError as exc:
            raise EvalError(f"--plot {options.plot}: {exc.strerror}") from None
        console.print(f"trade-off plot written to {options.plot}")
