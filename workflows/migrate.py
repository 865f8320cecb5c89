"""Schema migrations: Alembic, driven from code on the store's own async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from workflows.store import Store

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(store: Store, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(_run)


async def revision(store: Store, message: str) -> None:
    """Autogenerate a migration from the difference between tables.py and the database."""

    def _run(connection: Connection) -> None:
        command.revision(_config(connection), message=message, autogenerate=True)

    async with store.engine.begin() as conn:
        await conn.run_sync(_run)


async def pending(store: Store) -> list[str]:
    """Revisions not yet applied ([] when the schema is current)."""

    def _heads(connection: Connection) -> Any:
        current = set(MigrationContext.configure(connection).get_current_heads())
        script = ScriptDirectory.from_config(_config())
        return [
            rev.revision
            for rev in script.walk_revisions()
            if rev.revision not in current
            and not current.intersection(_descendants(script, rev.revision))
        ]

    async with store.engine.connect() as conn:
        result: list[str] = await conn.run_sync(_heads)
    return result


def _descendants(script: ScriptDirectory, revision: str) -> set[str]:
    return {rev.revision for rev in script.iterate_revisions("heads", revision)} - {revision}
