"""``switchboard examples``: the examples people taught the classifier, listed, exported,
approved and removed (``workflows/learned.py``).

A classify step with ``learn: true`` learns from them at its next classification; removing
a bad correction undoes it, approving one lets a ``learn_after_approval`` step use it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_support import cli_actor, fail, run, settings
from bot.db_ready import ready_store
from workflows import learned

examples_app = typer.Typer(help="Examples learned from triage picks and reassignments")

WorkflowOption = Annotated[str | None, typer.Option("--workflow", help="Only this workflow")]
StepOption = Annotated[str | None, typer.Option("--step", help="Only this route step")]
Ids = Annotated[list[str], typer.Argument(help="Example ids (from `switchboard examples list`)")]
OutOption = Annotated[Path | None, typer.Option("--out", help="File to write (default: stdout)")]
TEXT_WIDTH = 60


def _ids(values: list[str]) -> list[int]:
    if not all(v.isdigit() for v in values):
        bad = next(v for v in values if not v.isdigit())
        fail(f"example ids are whole numbers, not {bad!r}")
    return [int(v) for v in values]


async def _listed(workflow: str | None, step: str | None) -> list[learned.Learned]:
    store = await ready_store(settings())
    try:
        return await learned.list_examples(store, workflow, step)
    finally:
        await store.dispose()


@examples_app.command("list")
def list_command(workflow: WorkflowOption = None, step: StepOption = None) -> None:
    """One line per example: id, workflow/step, label (and what the AI had said), who, text."""
    rows = run(_listed(workflow, step))
    if not rows:
        typer.echo("no learned examples")
        return
    for e in rows:
        said = f" (AI: {e.predicted or 'unsure'})"
        ok = "" if e.approved else " [not approved]"
        text = e.text if len(e.text) <= TEXT_WIDTH else e.text[: TEXT_WIDTH - 1] + "…"
        typer.echo(
            f"{e.id}\t{e.workflow}/{e.step_id}\t{e.label}{said}{ok}\t{e.source} by "
            f"{e.created_by or '-'} {e.created_at:%Y-%m-%d %H:%M}\t{text}"
        )


@examples_app.command("export")
def export_command(
    workflow: WorkflowOption = None,
    step: StepOption = None,
    out: OutOption = None,
) -> None:
    """JSON lines with text and label (and provenance): `switchboard eval --data` reads them."""
    rows = run(_listed(workflow, step))
    lines = "".join(json.dumps(e.as_json(), ensure_ascii=False) + "\n" for e in rows)
    if out is None:
        typer.echo(lines, nl=False)
        return
    try:
        out.write_text(lines, encoding="utf-8")
    except OSError as exc:
        fail(f"--out {out}: {exc.strerror}")
    typer.echo(f"{len(rows)} examples written to {out}")


async def _change(ids: list[int], change: str) -> list[int]:
    store = await ready_store(settings())
    try:
        act = learned.remove if change == "removed" else learned.approve
        return await act(store, ids, cli_actor(), datetime.now(UTC))
    finally:
        await store.dispose()


def _report(ids: list[int], done: list[int], change: str) -> None:
    missing = sorted(set(ids) - set(done))
    if done:
        typer.echo(f"{change} {len(done)}: {', '.join(map(str, done))}")
    if missing:
        fail(f"no example with id {', '.join(map(str, missing))}", code=1)


@examples_app.command("remove")
def remove_command(ids: Ids) -> None:
    """Delete examples (a bad correction): learning steps stop using them at once."""
    wanted = _ids(ids)
    _report(wanted, run(_change(wanted, "removed")), "removed")


@examples_app.command("approve")
def approve_command(ids: Ids) -> None:
    """Approve examples for steps with `learn_after_approval: true`."""
    wanted = _ids(ids)
    _report(wanted, run(_change(wanted, "approved")), "approved")
