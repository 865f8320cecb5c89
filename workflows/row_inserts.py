"""New rows written without the ORM's unit of work: one multi-row INSERT per table.

The ack's start (``workflows/runs.py: start_run``) writes four new rows per run and
reads nothing back. Making ORM objects and flushing them costs more CPU than the rows
(instrumented attributes, state tracking, dependency sort), and on SQLite each of its
statements is three hand-overs to aiosqlite's thread. Here the rows are plain column
values per table (a missing column gets the default the ORM would apply), bound through
each column's own type (``UTCDateTime``, JSON) and written:

- SQLite (``write_now``): ``executemany`` per table inside ``Store.direct_write``, the
  whole transaction one hand-over to the driver's thread;
- PostgreSQL (``insert_rows``): one Core ``insert()`` per table in the caller's session.

``tests/workflows/test_start_path.py`` checks the rows equal what the ORM writes.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from workflows.store import Store

Rows = dict[Table, list[dict[str, Any]]]


@cache
def _written(table: Table) -> tuple[Column[Any], ...]:
    """Every column but an autoincrement key (the database numbers those rows)."""
    return tuple(c for c in table.columns if not (c.primary_key and c.autoincrement is True))


def _value(column: Column[Any], state: dict[str, Any]) -> Any:
    if column.key in state:
        return state[column.key]
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # type: ignore[attr-defined]  # SQLAlchemy wraps it: f(ctx)
    return default.arg  # type: ignore[attr-defined]


async def insert_rows(session: AsyncSession, rows: Rows) -> None:
    """Write ``rows`` in the caller's transaction: one Core ``insert()`` per table."""
    for table, values in rows.items():
        await session.execute(insert(table), values)


async def write_now(store: Store, rows: Rows) -> None:
    """SQLite, inside ``store.transaction()`` with its session unused (the write lock held):
    ``rows`` in a transaction of their own, one hand-over to the driver's thread."""
    dialect = store.engine.dialect
    statements = [_bound(table, values, dialect) for table, values in rows.items()]

    def write(conn: sqlite3.Connection) -> None:
        for sql, params in statements:
            conn.executemany(sql, params)

    try:
        await store.direct_write(write)
    except sqlite3.IntegrityError as exc:  # the callers' contract is SQLAlchemy's error
        raise IntegrityError("INSERT (start)", None, exc) from exc


def _bound(
    table: Table, values: list[dict[str, Any]], dialect: Dialect
) -> tuple[str, list[tuple[Any, ...]]]:
    sql, binders = _statement(table, dialect)
    columns = _written(table)
    params = []
    for row in values:
        raw = [_value(c, row) for c in columns]
        params.append(
            tuple(b(v) if b is not None else v for b, v in zip(binders, raw, strict=True))
        )
    return sql, params


@cache
def _statement(table: Table, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """``INSERT INTO t (a, b) VALUES (?, ?)`` and each column's bind processor (or None)."""
    quote = dialect.identifier_preparer.quote
    columns = _written(table)
    names = ", ".join(quote(c.name) for c in columns)
    marks = ", ".join("?" for _ in columns)
    # The processor SQLAlchemy's compiler applies (TypeDecorator included).
    binders = tuple(c.type._cached_bind_processor(dialect) for c in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", binders
