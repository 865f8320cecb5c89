"""Helpers for the trigger tests: stores on the shared test database, and what runs exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from workflows.store import Store
from workflows.tables import RequestRow, RunRow


async def runs_of(store: Store, workflow: str) -> list[tuple[RunRow, RequestRow]]:
    """Every run of ``workflow`` with the request that started it, oldest first."""
    async with store.transaction() as session:
        rows = await session.execute(
            select(RunRow, RequestRow)
            .join(RequestRow, RequestRow.id == RunRow.request_id)
            .where(RunRow.workflow == workflow)
            .order_by(RunRow.created_at, RequestRow.dedupe_key)
        )
        return [(run, request) for run, request in rows.tuples()]


def run_input(run: RunRow) -> dict[str, Any]:
    return dict(run.context["input"])
