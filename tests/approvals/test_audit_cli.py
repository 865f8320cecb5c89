"""`switchboard audit verify|export` as an operator runs them, on a real trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, select, update

from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, start, workflow
from tests.support.stores import Database
from workflows.tables import AuditRow

SWITCHBOARD = Path(sys.executable).parent / "switchboard"


def cli(database: Database, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **database.env()}
    return subprocess.run(
        [str(SWITCHBOARD), "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
        ok = cli(database, "verify")
        assert ok.returncode == 0, ok.stderr
        assert "intact: 4 records" in ok.stdout  # run.started, 2 steps, run.succeeded

        exported = cli(database, "export", "--run", run_id, "--format", "jsonl")
        records = [json.loads(line) for line in exported.stdout.splitlines()]
        assert [r["action"] for r in records] == [
            "run.started",
            "step.completed",
            "step.completed",
            "run.succeeded",
        ]
        csv = cli(database, "export", "--format", "csv").stdout.splitlines()
        assert csv[0].startswith("seq,created_at,run_id") and len(csv) == 5

        async with store.transaction() as session:
            first = await session.scalar(select(AuditRow.seq).order_by(AuditRow.seq).limit(1))
            actor = await session.scalar(select(AuditRow.actor).where(AuditRow.seq == first))
            await session.execute(
                update(AuditRow).where(AuditRow.seq == first).values(actor="someone-else")
            )
        altered = cli(database, "verify")
        assert altered.returncode == 1 and "changed" in altered.stderr

        async with store.transaction() as session:
            await session.execute(update(AuditRow).where(AuditRow.seq == first).values(actor=actor))
        assert cli(database, "verify").returncode == 0
        async with store.transaction() as session:
            await session.execute(delete(AuditRow).where(AuditRow.seq == first + 1))
        deleted = cli(database, "verify")
        assert deleted.returncode == 1 and "missing or changed" in deleted.stderr
    finally:
        await store.dispose()
