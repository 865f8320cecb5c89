"""``switchboard report shadow WORKFLOW --suggest-threshold``: ``min_confidence`` from what
people decided in shadow mode, with the same trade-off table and plot as ``eval``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bot.db_ready import ready_store
from bot.eval_report import curve_table, render_curve_png, suggestion_lines
from bot.settings import Settings
from connectors.ai.evaluation import tune_threshold
from connectors.ai.thresholds import Suggestion, Target, TargetError, curve, parse_target, suggest
from workflows.language.steps.ai import ClassifyStep
from workflows.loader import CheckContext, load_folder
from workflows.shadow_scores import ShadowScores, shadow_scores


class ShadowOptionError(Exception):
    """A bad ``--target`` or ``--plot``; one line for the CLI."""


@dataclass(frozen=True)
class ShadowThreshold:
    target: Target | None
    plot: Path | None


def shadow_threshold_options(
    suggest_threshold: bool, target: str | None, plot: Path | None
) -> ShadowThreshold | None:
    """The checked options, or ``None`` for the plain report; raises ``ShadowOptionError``."""
    if not suggest_threshold:
        for given, name in ((target, "--target"), (plot, "--plot")):
            if given is not None:
                raise ShadowOptionError(f"{name} needs --suggest-threshold")
        return None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise ShadowOptionError(f"--plot {plot}: the file name must end in .png")
        if not plot.parent.is_dir():
            raise ShadowOptionError(f"--plot {plot}: no such folder {plot.parent}")
    try:
        return ShadowThreshold(parse_target(target) if target is not None else None, plot)
    except TargetError as exc:
        raise ShadowOptionError(str(exc)) from None


def current_threshold(settings: Settings, workflow: str) -> float | None:
    """The workflow's first classify step's ``min_confidence``, if the definition loads."""
    found = load_folder(settings.workflows_dir, CheckContext()).workflows.get(workflow)
    steps = [s for s in found.steps if isinstance(s, ClassifyStep)] if found else []
    return steps[0].classify.min_confidence if steps else None


async def suggest_from_shadow(
    settings: Settings, workflow: str, options: ShadowThreshold, console: Console
) -> None:
    store = await ready_store(settings)
    try:
        scores = await shadow_scores(store, workflow)
    finally:
        await store.dispose()
    if not scores.records:
        console.print(
            f"No shadow-mode decisions with a confidence yet for {workflow}: "
            "nothing to suggest a threshold from."
        )
        return
    current = current_threshold(settings, workflow)
    chosen = _report(scores, options.target, current, console)
    if options.plot is not None:
        title = f"{workflow}: threshold trade-off from shadow mode"
        png = await asyncio.to_thread(render_curve_png, curve(scores.records), chosen, title)
        try:
            options.plot.write_bytes(png)
        except OSError as exc:
            console.print(f"--plot {options.plot}: {exc.strerror}")
            return
        console.print(f"trade-off plot written to {options.plot}")


def _report(
    scores: ShadowScores, target: Target | None, current: float | None, console: Console
) -> float:
    records = scores.records
    n_out = sum(r.truth is None for r in records)
    suggestion: Suggestion | None = suggest(records, target) if target is not None else None
    console.print(curve_table(records, suggestion, current))
    console.print(
        f"from {len(records)} requests people decided "
        f"({len(records) - n_out} to a label, {n_out} to triage)"
        + (f"; {scores.unscored} without a confidence left out" if scores.unscored else "")
    )
    if suggestion is not None:
        for line in suggestion_lines(suggestion, current):
            console.print(line)
        return suggestion.point.threshold
    chosen = tune_threshold(records).threshold
    console.print(f"suggested min_confidence: {chosen:g} (balanced; give --target for another aim)")
    return chosen
