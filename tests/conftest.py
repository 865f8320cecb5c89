"""Fixtures shared by the whole suite. Sub-folders add their own next to their tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.stores import Database, pg_available, postgres_database, sqlite_database
from workflows.store import Store


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template") / "migrated.db"


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Database]:
    """Every test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        async with sqlite_database(tmp_path, sqlite_template) as db:
            yield db
        return
    reason = await pg_available()
    if reason and os.environ.get("SWITCHBOARD_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL is required here: {reason}")
    if reason:
        pytest.skip(reason)
    async with postgres_database() as db:
        yield db


@pytest.fixture
async def pg_database() -> AsyncIterator[Database]:
    """PostgreSQL only (what only PostgreSQL has: replicas on one database, its indexes);
    fails when SWITCHBOARD_REQUIRE_PG is set and PostgreSQL is not there."""
    reason = await pg_available()
    if reason and os.environ.get("SWITCHBOARD_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL is required here: {reason}")
    if reason:
        pytest.skip(reason)
    async with postgres_database() as db:
        yield db


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    """A store on ``database`` (so on both backends), disposed after the test."""
    store = database.store()
    yield store
    await store.dispose()
