"""``switchboard report …``: reports for operators, printed as tables (rich)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.db_ready import ready_store
from bot.settings import ConfigurationError, load_settings
from bot.shadow_threshold import (
    ShadowOptionError,
    shadow_threshold_options,
    suggest_from_shadow,
)
from workflows.routing import ShadowReport, shadow_report

report_app = typer.Typer(help="Reports for operators.", no_args_is_help=True)


@report_app.command("shadow")
def shadow(
    workflow: Annotated[
        str, typer.Argument(help="A workflow whose route step runs in shadow mode")
    ],
    suggest_threshold: Annotated[
        bool, typer.Option(help="Suggest min_confidence from what people decided")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(help="triage-oos=0.9, triage-share=0.1 or routed-right=0.9"),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Trade-off curve to this PNG")] = None,
) -> None:
    """How the bot's routing compares with people's, before going live."""
    try:
        settings = load_settings()
        wanted = shadow_threshold_options(suggest_threshold, target, plot)
    except (ConfigurationError, ShadowOptionError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if wanted is not None:
        asyncio.run(suggest_from_shadow(settings, workflow, wanted, Console()))
        return

    async def go() -> ShadowReport:
        store = await ready_store(settings)
        try:
            return await shadow_report(store, workflow)
        finally:
            await store.dispose()

    result = asyncio.run(go())
    console = Console()
    if result.decided == 0:
        console.print(
            f"No routing decisions by people yet for {workflow} "
            f"({result.undecided} requests waiting for one)."
        )
        return
    table = Table(title=f"Shadow routing: {workflow}")
    table.add_column("label people chose")
    table.add_column("bot agreed", justify="right")
    table.add_column("accuracy", justify="right")
    for label, (correct, total) in sorted(result.per_label.items()):
        table.add_row(label, f"{correct}/{total}", f"{correct / total:.0%}")
    console.print(table)
    console.print(
        f"accuracy {result.accuracy:.1%} on {result.decided} decided requests · "
        f"{result.undecided} undecided · bot unsure (triage) {result.triage_share:.0%} · "
        f"people's routing time the bot would have saved: {result.saved_minutes:.0f} min"
    )
