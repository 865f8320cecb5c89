"""Before a command touches the database: it exists, answers and carries the current schema.

Without this, a fresh clone's ``switchboard stats`` created an empty ``./switchboard.db``
(SQLite makes the file on connect) and printed a ``no such table`` traceback. The check
reads SQLite through a read-only connection so it never creates or changes a file, and
PostgreSQL through one plain connection; it writes nothing on either.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from bot.settings import Settings, open_store
from workflows.migrate import MIGRATIONS_DIR
from workflows.store import Store, is_database_outage

UPGRADE = "run `switchboard db upgrade`"
NOT_READY_EXIT = 3
"""Exit code of a command stopped here: distinct from 1 (audit tampered) and 2 (bad setting)."""


class DatabaseNotReady(Exception):
    """The database is missing, unreachable or not migrated; the message is one line."""


async def ready_store(settings: Settings) -> Store:
    """The store, once ``ensure_ready`` passed: what every command that reads or writes uses."""
    await ensure_ready(settings)
    return open_store(settings)


async def ensure_ready(settings: Settings) -> None:
    """Raise DatabaseNotReady unless the schema is current; creates nothing."""
    if settings.database_url.startswith("sqlite"):
        current = _sqlite_heads(settings.database_url)
    else:
        current = await _postgres_heads(settings)
    if not current:
        raise DatabaseNotReady(f"the database is not migrated: {UPGRADE}")
    missing = _pending(current)
    if missing:
        raise DatabaseNotReady(
            f"the database schema is behind ({len(missing)} migrations pending): {UPGRADE}"
        )


def sqlite_path(url: str) -> Path:
    return Path(url.split("://", 1)[1].removeprefix("/").split("?", 1)[0])


def _sqlite_heads(url: str) -> set[str]:
    path = sqlite_path(url)
    if not path.is_file():
        raise DatabaseNotReady(f"the database {path} does not exist: {UPGRADE} to create it")
    # mode=ro: opening never creates the file, and no pragma turns it into a WAL file.
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    try:
        with engine.connect() as connection:
            return _heads(connection)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        raise DatabaseNotReady(f"cannot read the database {path}: {_reason(exc)}") from None
    finally:
        engine.dispose()


async def _postgres_heads(settings: Settings) -> set[str]:
    store = open_store(settings)
    try:
        async with store.engine.connect() as connection:
            return await connection.run_sync(_heads)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        raise DatabaseNotReady(
            f"cannot reach the database (DATABASE_URL): {_reason(exc)}"
        ) from None
    finally:
        await store.dispose()


def _heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _pending(current: set[str]) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    # Everything at or below an applied revision is applied.
    try:
        applied = {r.revision for head in current for r in script.iterate_revisions(head, "base")}
    except CommandError:
        raise DatabaseNotReady(
            f"the database schema ({', '.join(sorted(current))}) is newer than this switchboard"
        ) from None
    return [rev.revision for rev in script.walk_revisions() if rev.revision not in applied]


def _reason(exc: BaseException) -> str:
    cause = exc.orig if hasattr(exc, "orig") and exc.orig is not None else exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}"[:200]
