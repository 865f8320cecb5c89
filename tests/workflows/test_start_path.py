"""``start_run`` is the ack's one transaction: the rows the ORM would write, in one short write.

On SQLite every statement through SQLAlchemy + aiosqlite is several hand-overs to the
driver's thread (cursor, execute, close; BEGIN IMMEDIATE and COMMIT each one more), and
on a busy 2-core machine each hand-over waits for the GIL. A start is one hand-over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import select

from tests.support.engines import workflow as parse_workflow
from tests.support.stores import sqlite_database
from workflows.ids import new_id
from workflows.language.workflow import Workflow
from workflows.runs import StartRequest, _start_rows, start_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RequestRow, RunRow

WORKFLOW = "name: greet\nsteps:\n  - id: hi\n    post: {text: hi}\n  - id: bye\n    set: {x: 1}\n"
NOW = datetime(2026, 12, 4, 3, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def workflow() -> Workflow:
    return parse_workflow(WORKFLOW)


def request(workflow: Workflow, key: str | None = "command:T1:trig-1") -> StartRequest:
    return StartRequest(
        workflow=workflow,
        source="command",
        text="hello <there> & ünïcode",
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        team_id="T0TEAM",
        dedupe_key=key,
        trigger_id="trig-1",
    )


@pytest.fixture
def handovers() -> Iterator[list[str]]:
    """Every function aiosqlite hands to a connection's thread (observed, not replaced)."""
    seen: list[str] = []
    original = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]


def columns(row: Any, *skip: str) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}


async def written(store: Store, run_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return {
            "request": columns(await session.get(RequestRow, run_id), "id"),
            "run": columns(await session.get(RunRow, run_id), "id", "request_id"),
            "jobs": [
                columns(job, "id", "run_id")
                for job in await session.scalars(select(JobRow).where(JobRow.run_id == run_id))
            ],
            "audit": [
                columns(record, "seq", "run_id")
                for record in await session.scalars(
                    select(AuditRow).where(AuditRow.run_id == run_id)
                )
            ],
        }


async def test_a_start_writes_exactly_the_rows_the_orm_writes(
    store: Store, workflow: Workflow
) -> None:
    orm_id = new_id()
    async with store.transaction() as session:
        session.add_all(_start_rows(orm_id, request(workflow, "orm-key"), NOW))
    started = await start_run(store, request(workflow), NOW)
    assert not started.duplicate
    by_orm, by_start = await written(store, orm_id), await written(store, started.run_id)
    assert by_orm["request"].pop("dedupe_key") == "orm-key"
    assert by_start["request"].pop("dedupe_key") == "command:T1:trig-1"
    assert by_start == by_orm
    assert by_start["run"]["created_at"] == NOW
    assert by_start["jobs"][0]["payload"] == {} and by_start["jobs"][0]["kind"] == "step"


async def test_a_replayed_start_finds_the_first_run(store: Store, workflow: Workflow) -> None:
    first = await start_run(store, request(workflow), NOW)
    again = await start_run(store, request(workflow), NOW)
    assert again.run_id == first.run_id and again.duplicate
    # Started together (one group commit): one run, the other finds it.
    together = await asyncio.gather(
        *(start_run(store, request(workflow, "command:T1:same"), NOW) for _ in range(3))
    )
    assert len({s.run_id for s in together}) == 1
    assert sorted(s.duplicate for s in together) == [False, True, True]
    async with store.read() as session:
        runs = (await session.scalars(select(RunRow.id))).all()
    assert len(runs) == 2


async def test_a_start_on_sqlite_is_one_handover_to_the_driver_thread(
    tmp_path: Path, sqlite_template: Path, workflow: Workflow, handovers: list[str]
) -> None:
    async with sqlite_database(tmp_path, sqlite_template) as database:
        store = database.store()
        try:
            await one_start_one_handover(store, workflow, handovers)
        finally:
            await store.dispose()


async def one_start_one_handover(store: Store, workflow: Workflow, handovers: list[str]) -> None:
    await start_run(store, request(workflow, "warm"), NOW)  # connections opened, pools filled
    handovers.clear()
    started = await start_run(store, request(workflow), NOW)
    assert len(handovers) == 1, handovers
    assert (await written(store, started.run_id))["run"]["status"] == "running"
