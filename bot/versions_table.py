"""``switchboard workflows``: each workflow's stored versions and the runs still on each."""

from __future__ import annotations

import asyncio
from datetime import UTC

from rich.console import Console
from rich.table import Table

from bot.db_ready import ready_store
from bot.people import resolve_as_served
from bot.settings import load_settings
from workflows.loader import CheckContext, load_folder
from workflows.versions import SHORT, VersionSummary, digest_of, version_summaries


def versions_table(summaries: list[VersionSummary], live: dict[str, str]) -> Table:
    """One row per version, newest first; ``live`` is workflow -> the folder's digest now."""
    table = Table(title="Workflow versions", title_justify="left")
    for column in ("workflow", "version", "first seen (UTC)", "live runs", "new runs"):
        table.add_column(column, no_wrap=True)
    for summary in summaries:
        table.add_row(
            summary.workflow,
            summary.digest[:SHORT],
            f"{summary.first_seen_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            str(summary.live_runs),
            "yes" if live.get(summary.workflow) == summary.digest else "",
        )
    for name in sorted(set(live) - {s.workflow for s in summaries}):
        table.add_row(name, live[name][:SHORT], "not served yet", "0", "yes")
    return table


def workflows_command() -> None:
    """List each workflow's versions: digest, first seen, runs still on it, which is current."""
    config = load_settings()  # a bad setting or database: one line from ``cli.main``
    folder = load_folder(config.workflows_dir, CheckContext(templates_dir=config.templates_dir))

    async def go() -> list[VersionSummary]:
        store = await ready_store(config)
        try:
            await resolve_as_served(folder.workflows, config)  # as serve recorded them
            return await version_summaries(store)
        finally:
            await store.dispose()

    summaries = asyncio.run(go())
    live = {name: digest_of(workflow) for name, workflow in folder.workflows.items()}
    Console(width=120).print(versions_table(summaries, live))
