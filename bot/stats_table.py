"""``switchboard stats``: the numbers of ``workflows.stats`` as rich tables for a terminal."""

from __future__ import annotations

from rich.table import Table

from workflows.stats import Stats, summary


def stats_tables(stats: Stats, period: str) -> list[Table]:
    """Overview first; then by workflow, approvers, slowest steps and pending approvals."""
    view = summary(stats)
    scope = f" · {stats.workflow}" if stats.workflow else ""
    overview = Table(
        title=f"The past {period}{scope} ({view['start']} – {view['end']} UTC)",
        title_justify="left",
        show_header=False,
    )
    overview.add_column("measure", style="bold")
    overview.add_column("value")
    outcomes = ", ".join(f"{o['count']} {o['status']}" for o in view["outcomes"]) or "none"
    for label, value in (
        ("Requests", f"{view['volume']} ({outcomes})"),
        ("Cycle time p50 / p90", f"{view['cycle_p50']} / {view['cycle_p90']}"),
        ("Waiting on people", f"{view['people']} ({view['people_share']} of cycle time)"),
        ("Machine time", view["machines"]),
        ("Exception rate", f"{view['exception_rate']} ({view['failures']} failed)"),
        ("Triage share", f"{view['triage_share']} of {view['assignments']} routed"),
        ("Approvals pending now", str(view["pending_total"])),
    ):
        overview.add_row(label, str(value))
    tables = [overview]
    tables.append(
        _table(
            "By workflow",
            ("workflow", "requests", "outcomes"),
            [(w["name"], str(w["total"]), w["outcomes"]) for w in view["workflows"]],
        )
    )
    tables.append(
        _table(
            "Approver response time",
            ("approver", "decisions", "median"),
            [(a["user"], str(a["decisions"]), a["median"]) for a in view["approvers"]],
        )
    )
    tables.append(
        _table(
            "Slowest steps (total job time)",
            ("workflow", "step", "jobs", "total", "p90"),
            [
                (s["workflow"], s["step"], str(s["jobs"]), s["total"], s["p90"])
                for s in view["bottlenecks"]
            ],
        )
    )
    tables.append(
        _table(
            "Approvals pending, oldest first",
            ("run", "workflow", "step", "waiting", "on"),
            [
                (p["run_id"], p["workflow"], p["step"], p["waiting"], ", ".join(p["approvers"]))
                for p in view["pending"]
            ],
        )
    )
    return [t for t in tables if t is overview or t.row_count]


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table
