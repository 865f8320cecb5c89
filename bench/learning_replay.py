"""Replay a test split through a workflow's classify step while "people" correct it: with and
without ``learn: true``, side by side.

The stream is the data file in its (seeded, shuffled) order. Each request is classified by
the step's own settings (labels, examples, ``min_confidence``) through the local provider,
exactly as the step does (``workflows/learned.with_learned`` adds what people taught it).
People then do what a triage channel and the owning teams do: a request sent to triage
that some team owns is picked for that team, and a request routed to the wrong team is
reassigned to the right one; each becomes a learned example. Requests nobody owns are
closed (no example). Corrections reach the model in batches of ``--batch`` requests (the
product refits in the background, so its model lags the corrections anyway; a refit per
correction would cost minutes here); within a batch the model is fixed and the batch is
scored at once, which gives the numbers single classify calls give.

Printed: routed right (in scope: to its team; out of scope: to triage) on the stream after
the first ``--warmup`` share (default 20 %), with and without learning, and the curve of
that rate per tenth of the stream; ``--plot`` writes the curve as a PNG.

    .venv/bin/python -m bench.learning_replay                      # CLINC150, bundled example
    .venv/bin/python -m bench.learning_replay --workflow /tmp/b77/banking77-routing.yaml \\
        --data /tmp/b77/test.jsonl                                  # see bench/banking77_routing.py
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.eval_data import Example, classify_step, label_specs, read_data, resolve_workflow
from connectors.ai.base import LabelSpec
from connectors.ai.local import LocalProvider
from workflows.learned import with_learned

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "clinc" / "clinc-routing.yaml"
DATA = ROOT / "examples" / "clinc" / "test_with_oos.jsonl"
BUCKETS = 10


@dataclass
class Replay:
    right: list[bool] = field(default_factory=list)
    """Per request, in stream order: did it go where it belongs the first time."""
    in_scope: list[bool] = field(default_factory=list)
    triaged: list[bool] = field(default_factory=list)
    learned: int = 0
    refits: int = 0
    seconds: float = 0.0

    def rate(self, start: int, end: int, *, scope: bool | None = None) -> float:
        rows = [
            r
            for r, s in zip(self.right[start:end], self.in_scope[start:end], strict=True)
            if scope is None or s == scope
        ]
        return sum(rows) / len(rows) if rows else 0.0

    def triage_share(self, start: int, end: int) -> float:
        part = self.triaged[start:end]
        return sum(part) / len(part) if part else 0.0


def replay(
    provider: LocalProvider,
    labels: list[LabelSpec],
    threshold: float,
    stream: list[Example],
    batch: int,
    learn: bool,
) -> Replay:
    result = Replay()
    taught: dict[str, str] = {}
    started = time.perf_counter()
    fits = provider.fits
    for start in range(0, len(stream), batch):
        chunk = stream[start : start + batch]
        current = with_learned(labels, list(taught.items())) if learn else labels
        prediction = provider.score(current, [e.text for e in chunk])
        confidences = prediction.confidences()
        for row, example in enumerate(chunk):
            best = int(confidences[row].argmax())
            confident = round(float(confidences[row, best]), 4) >= threshold
            routed = prediction.labels[best] if confident else None
            result.right.append(routed == example.label)
            result.in_scope.append(example.label is not None)
            result.triaged.append(routed is None)
            if example.label is not None and routed != example.label:
                # A triage pick or a reassignment: the newest decision per text counts.
                taught[example.text] = example.label
    result.learned = len(taught) if learn else 0
    result.refits = provider.fits - fits
    result.seconds = time.perf_counter() - started
    return result


def fewer(label: LabelSpec, shots: int) -> LabelSpec:
    groups = {name: texts[:shots] for name, texts in label.example_groups.items()}
    return label.model_copy(update={"examples": label.examples[:shots], "example_groups": groups})


def curve_rows(runs: dict[str, Replay], size: int) -> list[str]:
    edges = [round(size * i / BUCKETS) for i in range(BUCKETS + 1)]
    lines = ["| stream | " + " | ".join(f"{name} routed right" for name in runs) + " |"]
    lines.append("|---|" + "---|" * len(runs))
    for a, b in itertools.pairwise(edges):
        cells = " | ".join(f"{run.rate(a, b):.1%}" for run in runs.values())
        lines.append(f"| {a + 1}–{b} | {cells} |")
    return lines


def summary_rows(runs: dict[str, Replay], warm: int, size: int) -> list[str]:
    lines = [
        f"| after the first {warm:,} requests | " + " | ".join(runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    measures: list[tuple[str, Callable[[Replay], str]]] = [
        ("routed right (all)", lambda r: f"{r.rate(warm, size):.2%}"),
        ("in scope routed to the right team", lambda r: f"{r.rate(warm, size, scope=True):.2%}"),
        ("out of scope sent to triage", lambda r: _share(r, warm, size, scope=False)),
        ("triage share", lambda r: f"{r.triage_share(warm, size):.2%}"),
        ("examples learned (whole stream)", lambda r: f"{r.learned:,}"),
        ("refits / seconds", lambda r: f"{r.refits} / {r.seconds:.0f} s"),
    ]
    for name, cell in measures:
        lines.append(f"| {name} | " + " | ".join(cell(run) for run in runs.values()) + " |")
    return lines


def _share(run: Replay, start: int, end: int, *, scope: bool) -> str:
    if not any(s == scope for s in run.in_scope[start:end]):
        return "n/a"
    return f"{run.rate(start, end, scope=scope):.2%}"


def plot(path: Path, runs: dict[str, Replay], size: int, warm: int) -> None:
    from matplotlib.figure import Figure

    edges = [round(size * i / BUCKETS) for i in range(BUCKETS + 1)]
    middles = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
    for name, run in runs.items():
        rates = [100 * run.rate(a, b) for a, b in itertools.pairwise(edges)]
        axes.plot(middles, rates, marker="o", label=name)
    axes.axvline(warm, color="grey", linestyle=":", label="end of the warm-up")
    axes.set_xlabel("requests into the stream")
    axes.set_ylabel("routed right, % (per tenth)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.savefig(str(path), format="png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflow", default=str(WORKFLOW))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--batch", type=int, default=100, help="requests per refit")
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="stream order")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument(
        "--shots",
        type=int,
        default=None,
        help="start from only the first N written examples of each kind (a colder start)",
    )
    args = parser.parse_args()
    workflow = resolve_workflow(args.workflow, ROOT / "workflows")
    step = classify_step(workflow, None)
    labels = label_specs(step.classify)
    if args.shots is not None:
        labels = [fewer(label, args.shots) for label in labels]
    stream = read_data(args.data, list(step.classify.labels))
    random.Random(args.seed).shuffle(stream)
    stream = stream[: args.limit] if args.limit else stream
    provider = LocalProvider()
    threshold = step.classify.min_confidence
    runs = {
        "without learning": replay(provider, labels, threshold, stream, args.batch, learn=False),
        "with learn: true": replay(provider, labels, threshold, stream, args.batch, learn=True),
    }
    size, warm = len(stream), round(len(stream) * args.warmup)
    print(
        f"{workflow.name}: {size:,} requests ({sum(e.label is None for e in stream):,} out of "
        f"scope), min_confidence {threshold}, corrections applied every {args.batch}"
        + (f", {args.shots} written examples per kind" if args.shots else "")
        + "\n"
    )
    print("\n".join(summary_rows(runs, warm, size)) + "\n")
    print("\n".join(curve_rows(runs, size)))
    names = list(runs)
    gain = runs[names[1]].rate(warm, size) - runs[names[0]].rate(warm, size)
    rest = f"{1 - args.warmup:.0%}"
    print(f"\nrouted right on the last {rest}: {100 * gain:+.1f} points with learning")
    if args.plot is not None:
        plot(args.plot, runs, size, warm)
        print(f"curve written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
