"""The suite's databases are what the migrations build (tests/support/stores.py copies them).

Each test's PostgreSQL schema is a replay of the SQL Alembic sent for the process's
first one; this compares a replayed schema with one Alembic builds from scratch, in
every column, constraint, index and the recorded revision.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.support.stores import PG_URL, Database, _raw, pg_available, postgres_database
from workflows import migrate

DESCRIBE = [
    """SELECT table_name, column_name, data_type, is_nullable,
              replace(coalesce(column_default, ''), $1 || '.', '')
       FROM information_schema.columns WHERE table_schema = $1""",
    """SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid)
       FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
       WHERE rel.relnamespace = $1::regnamespace""",
    """SELECT tablename, indexname, replace(indexdef, $1 || '.', '')
       FROM pg_indexes WHERE schemaname = $1""",
]


async def describe(conn: asyncpg.Connection, schema: str) -> list[set[tuple[object, ...]]]:
    parts = [{tuple(row) for row in await conn.fetch(query, schema)} for query in DESCRIBE]
    version = await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
    return [*parts, {tuple(row) for row in version}]


async def test_a_replayed_postgres_schema_is_the_one_alembic_builds() -> None:
    reason = await pg_available()
    if reason:
        pytest.skip(reason)
    async with postgres_database():
        pass  # the process's first schema is migrated by Alembic and recorded
    fresh = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_raw(PG_URL))
    try:
        await conn.execute(f'CREATE SCHEMA "{fresh}"')
        store = Database("postgres", PG_URL, fresh).store()
        await migrate.upgrade(store)
        await store.dispose()
        async with postgres_database() as replayed:
            assert replayed.schema is not None
            built, copied = await describe(conn, fresh), await describe(conn, replayed.schema)
        assert all(built), "the description saw every kind of object"
        assert copied == built
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{fresh}" CASCADE')
        await conn.close()
