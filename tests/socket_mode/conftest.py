"""Socket Mode tests run on SQLite (the transport is what they exercise); one case on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.stores import Database, sqlite_database


@pytest.fixture
async def sqlite_db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    async with sqlite_database(tmp_path, sqlite_template) as db:
        yield db
