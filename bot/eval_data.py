"""``switchboard eval``'s inputs: the arguments, the workflow and step, the labelled data.

Problems an operator can fix (unknown workflow or step, unreadable data, a label the
step does not have) raise ``EvalError`` with one line naming them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.ai.base import LabelSpec
from connectors.ai.evaluation import Scored
from connectors.ai.thresholds import TargetError, parse_target
from workflows.language.steps.ai import ClassifySpec, ClassifyStep
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, load_file, load_folder

TRIAGE_LABELS = frozenset({"", "triage", "oos"})
"""Data labels meaning "no label owns this; people should get it" (compared lower-case)."""


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
    suggest_threshold: bool = False
    target: str | None = None
    """``NAME=VALUE`` (see ``connectors.ai.thresholds``); none: the balanced threshold."""
    plot: Path | None = None
    """PNG of the threshold trade-off curve (with ``suggest_threshold``)."""
    scores: Path | None = None
    """Score a saved scored set (JSON lines) instead of classifying ``data``."""
    save_scores: Path | None = None


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None
    """``None``: out of scope, should go to triage."""


def check_options(options: EvalOptions) -> None:
    """The checks that need no file: each failure one line."""
    if options.data is None and options.scores is None:
        raise EvalError("eval needs --data FILE (CSV with text,label columns, or JSON lines)")
    if options.data is not None and options.scores is not None:
        raise EvalError("eval takes --data FILE or --scores FILE, not both")
    if options.scores is not None and options.save_scores is not None:
        raise EvalError("--save-scores needs --data: --scores are already saved")
    if not options.suggest_threshold:
        for given, name in ((options.target, "--target"), (options.plot, "--plot")):
            if given is not None:
                raise EvalError(f"{name} needs --suggest-threshold")
    if options.target is not None:
        try:
            parse_target(options.target)
        except TargetError as exc:
            raise EvalError(str(exc)) from None
    _check_out_file("--plot", options.plot, ".png")
    _check_out_file("--save-scores", options.save_scores, ".jsonl")
    if options.limit is not None and options.limit < 1:
        raise EvalError(f"--limit must be at least 1, not {options.limit}")
    if options.min_confidence is not None and not 0.0 <= options.min_confidence <= 1.0:
        raise EvalError(f"--min-confidence must be between 0 and 1, not {options.min_confidence}")
    _check_out_file("--confusion-png", options.confusion_png, ".png")


def _check_out_file(option: str, path: Path | None, suffix: str) -> None:
    if path is None:
        return
    if path.suffix.lower() != suffix:
        raise EvalError(f"{option} {path}: the file name must end in {suffix}")
    if not path.parent.is_dir():
        raise EvalError(f"{option} {path}: no such folder {path.parent}")


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


def read_scores(path: Path, labels: Sequence[str], limit: int | None = None) -> list[Scored]:
    """A saved scored set: JSON lines of ``{"label", "predicted", "confidence"}`` (as
    ``--save-scores`` writes them); ``label`` as in the data, ``predicted`` empty for a
    text the provider could not classify."""
    if not path.is_file():
        raise EvalError(f"{path}: no such scores file")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read: {exc}") from None
    known = set(labels)
    records: list[Scored] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if limit is not None and len(records) >= limit:
            break
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{number}: not JSON: {exc.msg}") from None
        records.append(_scored(path, number, item, known, labels))
    if not records:
        raise EvalError(f"{path}: no scored rows")
    return records


def _scored(
    path: Path, number: int, item: object, known: set[str], labels: Sequence[str]
) -> Scored:
    if not isinstance(item, dict) or "label" not in item:
        raise EvalError(f'{path}:{number}: want an object with "label", "predicted", "confidence"')
    raw, predicted, confidence = item["label"], item.get("predicted"), item.get("confidence")
    if raw is not None and not isinstance(raw, str):
        raise EvalError(f'{path}:{number}: "label" must be a string or null')
    if predicted not in (None, "") and predicted not in known:
        raise EvalError(f"{path}:{number}: predicted label {predicted!r} is not the step's")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        raise EvalError(f'{path}:{number}: "confidence" must be a number')
    if not 0.0 <= confidence <= 1.0:
        raise EvalError(f'{path}:{number}: "confidence" must be between 0 and 1')
    truth = _truth(path, number, raw, known, labels)
    return Scored(truth=truth, predicted=str(predicted or ""), confidence=float(confidence))


def write_scores(path: Path, records: Sequence[Scored]) -> None:
    """What ``read_scores`` reads back; out-of-scope truths are written as ``null``."""
    lines = [
        json.dumps({"label": r.truth, "predicted": r.predicted, "confidence": r.confidence})
        for r in records
    ]
    try:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"--save-scores {path}: {exc.strerror}") from None
