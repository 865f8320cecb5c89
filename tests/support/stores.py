"""Databases for tests: a migrated SQLite file, or a fresh PostgreSQL schema, per test.

PostgreSQL is the scale-out engine and CI has it; locally it is skipped with a
visible reason only when no server answers at ``SWITCHBOARD_TEST_PG_URL``.

Both are migrated once per process and then copied: SQLite by copying the migrated
file; PostgreSQL by replaying, in each new schema, the SQL statements Alembic sent while
migrating the first one (they are unqualified, so they land in the search_path schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

from workflows import migrate
from workflows.store import Store

PG_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Database:
    backend: str
    url: str
    schema: str | None

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (``switchboard worker``) using this database."""
        env = {"DATABASE_URL": self.url}
        if self.schema:
            env["SWITCHBOARD_DB_SCHEMA"] = self.schema
        return env

    def store(self, **kwargs: int) -> Store:
        return Store(self.url, schema=self.schema, **kwargs)


async def pg_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_raw(PG_URL)), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _raw(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


_template_lock = asyncio.Lock()


@contextlib.asynccontextmanager
async def sqlite_database(tmp: Path, template: Path) -> AsyncIterator[Database]:
    # Migrating once per session and copying the file keeps each test's set-up to a copy.
    if not template.exists():
        url = f"sqlite+aiosqlite:///{template}"
        store = Store(url)
        await migrate.upgrade(store)
        await store.dispose()
    path = tmp / "switchboard.db"
    shutil.copy(template, path)
    yield Database("sqlite", f"sqlite+aiosqlite:///{path}", None)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[Database]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_raw(PG_URL))
    try:
        # A test's schema need not survive a power cut: its DDL commits without a disk flush.
        await conn.execute("SET synchronous_commit TO off")
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        database = Database("postgres", PG_URL, schema)
        await migrate_postgres(conn, database)
        yield database
    finally:
        if conn.is_closed():  # the server restarted under the test: clean up on a new line
            conn = await asyncpg.connect(_raw(PG_URL))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


# What Alembic sent PostgreSQL while migrating this process's first schema, as one script.
_migration_script: list[str] = []


async def migrate_postgres(conn: asyncpg.Connection, database: Database) -> None:
    """Migrate ``database``'s schema: Alembic the first time, then a replay of its SQL.

    A replay is one transaction and one round trip of the recorded statements (DDL and
    the version-table writes), without Alembic's start-up or its introspection queries.
    """
    if _migration_script:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{database.schema}"')
            await conn.execute(_migration_script[0])
        return
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            return  # Alembic's look at what exists; it changes nothing
        # Bound values cannot go into a script: an empty entry stops this run being replayed.
        sent.append("" if parameters else statement)

    store = database.store()
    try:
        event.listen(store.engine.sync_engine, "before_cursor_execute", record)
        await migrate.upgrade(store)
    finally:
        await store.dispose()
    if sent and all(sent):
        _migration_script.append(";\n".join(sent))
