"""Databases for tests: a migrated SQLite file, or a fresh PostgreSQL schema, per test.

PostgreSQL is the scale-out engine and CI has it; locally it is skipped with a
visible reason only when no server answers at ``SWITCHBOARD_TEST_PG_URL``.
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

import asyncpg

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
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        database = Database("postgres", PG_URL, schema)
        store = database.store()
        await migrate.upgrade(store)
        await store.dispose()
        yield database
    finally:
        if conn.is_closed():  # the server restarted under the test: clean up on a new line
            conn = await asyncpg.connect(_raw(PG_URL))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
