"""Issue 16 item 8: retention and forgetting.

Finished runs older than their cut-off lose their texts from every table while the audit
trail keeps its digests and still verifies; recent and still-waiting runs are untouched;
``--dry-run`` changes nothing; ``forget --user`` removes one person's texts only. The
commands run through the CLI's entry point in-process (one test runs the real executable)
against the test database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from tests.support.cli import Ran, switchboard, switchboard_process
from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, start, workflow
from tests.support.stores import Database
from workflows.language.workflow import Workflow
from workflows.scheduler import Scheduler
from workflows.store import Store
from workflows.tables import AuditRow, Base, ExampleRow

NOW = datetime.now(UTC)

KEEP = """\
name: keep
steps:
  - id: said
    set: {said: "{{ input.text }}", who: "{{ input.user }}"}
  - id: note
    set: {again: "{{ steps.said.said }}"}
"""
BRIEF = KEEP.replace("name: keep", "name: brief\nretention: {days: 30}")
HOLD = """\
name: hold
steps:
  - id: said
    set: {said: "{{ input.text }}"}
  - id: pause
    wait: {duration: 400d}
  - id: after
    set: {done: true}
"""
BROKEN = """\
name: broken
steps:
  - id: said
    set: {said: "{{ input.text }}"}
  - id: stop
    fail: "the ERP said no"
"""


def folder(tmp_path: Path) -> Path:
    path = tmp_path / "workflows"
    path.mkdir()
    for name, source in (("keep", KEEP), ("brief", BRIEF), ("hold", HOLD), ("broken", BROKEN)):
        (path / f"{name}.yaml").write_text(source)
    return path


def definitions() -> dict[str, Workflow]:
    return {wf.name: wf for wf in map(workflow, (KEEP, BRIEF, HOLD, BROKEN))}


def _env(database: Database, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **database.env(), "SWITCHBOARD_WORKFLOWS": str(tmp_path / "workflows")}


async def cli(database: Database, tmp_path: Path, *args: str) -> Ran:
    env = _env(database, tmp_path)
    return await asyncio.to_thread(switchboard, list(args), cwd=tmp_path, env=env)


async def cli_process(database: Database, tmp_path: Path, *args: str) -> Ran:
    env = _env(database, tmp_path)
    return await asyncio.to_thread(switchboard_process, list(args), cwd=tmp_path, env=env)


async def run_at(
    store: Store, when: datetime, name: str, texts: list[str], user: str = "U0REQ"
) -> list[str]:
    engine = make_engine(store, ManualClock(when), *definitions().values())
    ids = [await start(engine, name, text, user_id=user) for text in texts]
    await drain(engine)
    return ids


async def every_row(store: Store) -> str:
    """Every column of every row of every table, as one text."""
    parts = []
    async with store.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                parts.append(json.dumps([str(v) for v in row]))
    return "\n".join(parts)


async def add_examples(store: Store, run_ids: list[str], prefix: str) -> None:
    async with store.transaction() as session:
        for i, run_id in enumerate(run_ids):
            session.add(
                ExampleRow(
                    workflow="keep",
                    step_id="said",
                    text=f"{prefix}-{i}",
                    label="ap",
                    source="reassign",
                    run_id=run_id,
                    created_at=NOW,
                )
            )


async def test_purge_removes_old_texts_from_every_table_and_the_trail_still_verifies(
    database: Database, tmp_path: Path
) -> None:
    folder(tmp_path)
    store = database.store()
    try:
        old = NOW - timedelta(days=200)
        old_ids = await run_at(store, old, "keep", [f"old-text-{i}" for i in range(95)])
        old_ids += await run_at(store, old, "broken", [f"old-text-{i}" for i in range(95, 100)])
        await add_examples(store, old_ids[:10], "old-example")
        recent = await run_at(store, NOW - timedelta(days=1), "keep", ["recent-0", "recent-1"])
        await add_examples(store, recent, "recent-example")
        await run_at(store, old, "hold", ["waiting-0", "waiting-1"])
        assert (await cli(database, tmp_path, "audit", "verify")).returncode == 0

        before = await every_row(store)
        dry = await cli(database, tmp_path, "purge", "--older-than", "90d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would purge 100 runs" in dry.stdout
        assert await every_row(store) == before, "a dry run changes nothing"

        done = await cli(database, tmp_path, "purge", "--older-than", "90d")
        assert done.returncode == 0, done.stderr
        assert "purged 100 runs" in done.stdout
        after = await every_row(store)
        assert "old-text-" not in after and "old-example" not in after
        for kept in ("recent-0", "recent-1", "recent-example-1", "waiting-0", "waiting-1"):
            assert kept in after, kept
        assert f"[purged {NOW.date().isoformat()}]" in after

        verified = await cli(database, tmp_path, "audit", "verify")
        assert verified.returncode == 0, verified.stderr
        async with store.read() as session:
            purges = (
                await session.scalars(select(AuditRow).where(AuditRow.action == "retention.purge"))
            ).all()
        assert len(purges) == 1 and purges[0].detail["runs"] == 100
        assert purges[0].actor.startswith("cli:")

        again = await cli(database, tmp_path, "purge", "--older-than", "90d")
        assert again.returncode == 0 and "nothing to purge" in again.stdout
    finally:
        await store.dispose()


async def test_a_workflows_retention_wins_over_the_default(
    database: Database, tmp_path: Path
) -> None:
    folder(tmp_path)
    store = database.store()
    try:
        when = NOW - timedelta(days=60)
        await run_at(store, when, "brief", ["brief-text"])
        await run_at(store, when, "keep", ["keep-text"])
        result = await cli_process(database, tmp_path, "purge", "--older-than", "90d")
        assert result.returncode == 0 and "purged 1 runs" in result.stdout, result.stderr
        after = await every_row(store)
        assert "brief-text" not in after and "keep-text" in after
    finally:
        await store.dispose()


async def test_bad_purge_arguments_change_nothing(database: Database, tmp_path: Path) -> None:
    folder(tmp_path)
    store = database.store()
    try:
        await run_at(store, NOW - timedelta(days=200), "keep", ["still-here"])
        for args in (["--older-than", "soon"], ["--older-than", "0d"], ["--older-than", "-5d"]):
            result = await cli(database, tmp_path, "purge", *args)
            assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "still-here" in await every_row(store)
    finally:
        await store.dispose()


async def test_forget_removes_one_users_texts_only(database: Database, tmp_path: Path) -> None:
    folder(tmp_path)
    store = database.store()
    try:
        when = NOW - timedelta(days=2)
        mine = await run_at(store, when, "keep", ["alice-text-0", "alice-text-1"], "U0ALICE")
        await add_examples(store, mine, "alice-example")
        await run_at(store, when, "keep", ["bob-text ask <@U0ALICE>"], "U0BOB")
        await run_at(store, when, "hold", ["alice-waiting"], "U0ALICE")

        result = await cli(database, tmp_path, "forget", "--user", "U0ALICE")
        assert result.returncode == 0, result.stderr
        assert "2 request texts" in result.stdout
        assert "audit records" in result.stdout and mine[0] in result.stdout
        assert "still active" in result.stdout
        after = await every_row(store)
        assert "alice-text" not in after and "alice-example" not in after
        assert "bob-text ask <@[forgotten]>" in after
        assert "alice-waiting" in after, "an active run is kept (and reported)"
        assert (await cli(database, tmp_path, "audit", "verify")).returncode == 0

        bad = await cli(database, tmp_path, "forget", "--user", "alice; drop")
        assert bad.returncode == 2 and "user id" in bad.stderr
    finally:
        await store.dispose()


async def test_the_scheduled_purge_is_safe_in_every_process_at_once(database: Database) -> None:
    store = database.store()
    try:
        await run_at(store, NOW - timedelta(days=200), "keep", [f"t-{i}" for i in range(20)])
        schedulers = [
            Scheduler(store, definitions(), ManualClock(NOW), retention_days=90) for _ in range(3)
        ]
        counts = await asyncio.gather(*(s.purge_expired() for s in schedulers))
        assert sum(counts) == 20
        async with store.read() as session:
            records = (
                await session.scalars(select(AuditRow).where(AuditRow.action == "retention.purge"))
            ).all()
        assert sum(r.detail["runs"] for r in records) == 20
        assert all(r.actor == "scheduler" for r in records)
        assert "t-1" not in await every_row(store)
    finally:
        await store.dispose()
