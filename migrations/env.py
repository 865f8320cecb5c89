"""Alembic environment: runs on the connection ``workflows.migrate`` hands over.

Run through ``switchboard db upgrade`` (or ``workflows.migrate.upgrade``); the
URL comes from the settings, never from an ini file.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from workflows.tables import Base, UTCDateTime


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import product code: render our column types as plain SQLAlchemy.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `switchboard db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
