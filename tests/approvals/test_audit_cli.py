"""`switchboard audit verify|export` as an operator runs them, on a real trail.

The commands run through the CLI's entry point in-process (tests/support/cli.py).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from sqlalchemy import delete, select, update

from tests.support.cli import Ran, switchboard
from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, start, workflow
from tests.support.stores import Database
from workflows.tables import AuditRow


async def cli(database: Database, *args: str) -> Ran:
    env = {**os.environ, **database.env()}
    return await asyncio.to_thread(switchboard, ["audit", *args], cwd=Path.cwd(), env=env)


async def test_verify_passes_then_fails_after_a_change_and_after_a_deletion(
    database: Database,
) -> None:
    store = database.store()
    try:
        engine = make_engine(
            store,
            ManualClock(),
            workflow("""
            name: trail
            steps:
              - id: a
                set: {x: 1}
              - id: b
                set: {y: 2}
        """),
        )
        run_id = await start(engine, "trail", "hello")
        await drain(engine)
        ok = await cli(database, "verify")
        assert ok.returncode == 0, ok.stderr
        assert "intact: 4 records" in ok.stdout  # run.started, 2 steps, run.succeeded

        exported = await cli(database, "export", "--run", run_id, "--format", "jsonl")
        records = [json.loads(line) for line in exported.stdout.splitlines()]
        assert [r["action"] for r in records] == [
            "run.started",
            "step.completed",
            "step.completed",
            "run.succeeded",
        ]
        csv = (await cli(database, "export", "--format", "csv")).stdout.splitlines()
        assert csv[0].startswith("seq,created_at,run_id") and len(csv) == 5

        async with store.transaction() as session:
            first = await session.scalar(select(AuditRow.seq).order_by(AuditRow.seq).limit(1))
            actor = await session.scalar(select(AuditRow.actor).where(AuditRow.seq == first))
            await session.execute(
                update(AuditRow).where(AuditRow.seq == first).values(actor="someone-else")
            )
        altered = await cli(database, "verify")
        assert altered.returncode == 1 and "changed" in altered.stderr

        async with store.transaction() as session:
            await session.execute(update(AuditRow).where(AuditRow.seq == first).values(actor=actor))
        assert (await cli(database, "verify")).returncode == 0
        async with store.transaction() as session:
            await session.execute(delete(AuditRow).where(AuditRow.seq == first + 1))
        deleted = await cli(database, "verify")
        assert deleted.returncode == 1 and "missing or changed" in deleted.stderr
    finally:
        await store.dispose()
