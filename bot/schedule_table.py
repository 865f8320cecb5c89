"""``switchboard schedules``: what will fire when, as rich tables (computed, nothing started)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from rich.table import Table

from workflows.language.workflow import Workflow
from workflows.schedules import next_fire_times, schedule_entries
from workflows.thresholds import threshold_entries


def schedule_tables(workflows: Iterable[Workflow], now: datetime, count: int) -> list[Table]:
    """A table of cron schedules with their next ``count`` fires, and one of thresholds."""
    workflows = list(workflows)
    schedules = Table(title="Schedules", title_justify="left")
    for column in ("workflow", "#", "cron", "time zone", "misfire"):
        schedules.add_column(column)
    schedules.add_column("next fires, local (UTC)", no_wrap=True)
    for entry in schedule_entries(workflows):
        zone = ZoneInfo(entry.spec.timezone)
        fires = next_fire_times(entry.spec, now, count)
        misfire: str = entry.spec.misfire
        if misfire == "run_once":
            misfire += f" (grace {entry.spec.grace:g}s)"
        schedules.add_row(
            entry.workflow.name,
            str(entry.index),
            entry.spec.cron,
            entry.spec.timezone,
            misfire,
            "\n".join(
                f"{fire.astimezone(zone):%a %Y-%m-%d %H:%M %Z} ({fire.astimezone(UTC):%H:%MZ})"
                for fire in fires
            )
            or "never",
        )
    if not schedules.rows:
        schedules.caption = "no workflow has a schedule trigger"
    thresholds = Table(title="Threshold checks", title_justify="left")
    for column in ("workflow", "#", "every", "source", "fires when", "re-arms when"):
        thresholds.add_column(column)
    for threshold in threshold_entries(workflows):
        spec = threshold.spec
        source = f"http {spec.http.path}" if spec.http else "sql"
        if spec.above is not None:
            fires_when = f"> {spec.above:g}"
            rearms = f"<= {spec.clear if spec.clear is not None else spec.above:g}"
        else:
            assert spec.below is not None
            fires_when = f"< {spec.below:g}"
            rearms = f">= {spec.clear if spec.clear is not None else spec.below:g}"
        thresholds.add_row(
            threshold.workflow.name,
            str(threshold.index),
            f"{spec.every:g}s",
            f"{spec.connection}: {source}",
            fires_when,
            rearms,
        )
    tables = [schedules]
    if thresholds.rows:
        tables.append(thresholds)
    return tables
