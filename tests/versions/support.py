"""Shared by the versions tests: writing definitions, waiting on runs, approving cards."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.support.harness import Harness
from workflows.tables import AuditRow, JobRow, RunRow

CARDS = "finance-approvals"


def write(folder: Path, text: str, name: str = "expense.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def approve_step(step_id: str) -> str:
    return f"""
      - id: {step_id}
        approve:
          channel: "#{CARDS}"
          approvers: ["@finance"]
          title: "Expense: {{{{ input.text }}}}"
    """


async def runs(harness: Harness) -> list[RunRow]:
    async with harness.runtime.store.read() as session:
        return list(await session.scalars(select(RunRow).order_by(RunRow.created_at)))


async def jobs_of(harness: Harness, run_id: str) -> list[JobRow]:
    async with harness.runtime.store.read() as session:
        return list(await session.scalars(select(JobRow).where(JobRow.run_id == run_id)))


async def audit_of(harness: Harness, run_id: str) -> list[AuditRow]:
    async with harness.runtime.store.read() as session:
        query = select(AuditRow).where(AuditRow.run_id == run_id).order_by(AuditRow.seq)
        return list(await session.scalars(query))


async def wait_runs(harness: Harness, count: int, status: str, timeout: float = 30) -> list[RunRow]:
    async def settled() -> list[RunRow] | None:
        found = await runs(harness)
        matching = [run for run in found if run.status == status]
        return found if len(matching) >= count else None

    return await poll(harness, settled, timeout, f"{count} runs did not reach {status}")


async def poll(harness: Harness, probe: Any, timeout: float, message: str) -> Any:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            statuses = [(run.status, run.error) for run in await runs(harness)]
            raise AssertionError(f"{message}: {statuses}")
        await asyncio.sleep(0.1)


def cards(harness: Harness) -> list[dict[str, Any]]:
    return [
        message
        for message in harness.slack.messages(CARDS)
        if any(block["type"] == "actions" for block in message.get("blocks", []))
    ]


async def open_cards(harness: Harness, count: int) -> list[dict[str, Any]]:
    return await harness.slack.wait_for(
        lambda: found if len(found := cards(harness)) >= count else None,
        timeout=30,
        message=f"fewer than {count} approval cards",
    )
