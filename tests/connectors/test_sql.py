"""The sql connector on real SQLite files and on the PostgreSQL server."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from connectors.config import RetrySettings, SqlConfig
from connectors.errors import ConnectorConfigError, ConnectorRejected, ConnectorUnavailable
from connectors.sql import SqlConnector, is_read_statement, json_safe
from tests.support.servers import free_port


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "erp data.db"  # a space, to prove the read-only URI quoting
    with sqlite3.connect(path) as db:
        db.execute("create table po (po text primary key, amount numeric, vendor text, due date)")
        db.executemany(
            "insert into po values (?, ?, ?, ?)",
            [(f"PO-{i}", 100 + i, f"vendor {i}", f"2025-01-{i + 1:02d}") for i in range(25)],
        )
    db.close()
    return path


@pytest.fixture
async def sqlite_ro(sqlite_file: Path) -> AsyncIterator[SqlConnector]:
    config = SqlConfig(url=f"sqlite+aiosqlite:///{sqlite_file}", max_rows=10)
    connector = SqlConnector.from_config("erp", config, {})
    yield connector
    await connector.aclose()


async def test_select_with_bind_params_returns_dicts(sqlite_ro: SqlConnector) -> None:
    result = await sqlite_ro.query(
        "select po, amount, vendor from po where po = :po", {"po": "PO-3"}
    )
    assert result.rows == [{"po": "PO-3", "amount": 103, "vendor": "vendor 3"}]
    assert not result.truncated


async def test_params_are_data_not_sql(sqlite_ro: SqlConnector) -> None:
    result = await sqlite_ro.query("select po from po where po = :po", {"po": "x' or '1'='1"})
    assert result.rows == []


async def test_row_limit_truncates_and_caller_limit_cannot_exceed_it(
    sqlite_ro: SqlConnector,
) -> None:
    result = await sqlite_ro.query("select po from po order by po")
    assert len(result.rows) == 10 and result.truncated
    smaller = await sqlite_ro.query("select po from po order by po", limit=3)
    assert len(smaller.rows) == 3 and smaller.truncated
    larger = await sqlite_ro.query("select po from po order by po", limit=500)
    assert len(larger.rows) == 10
    exact = await sqlite_ro.query("select po from po where po in ('PO-1', 'PO-2')", limit=2)
    assert len(exact.rows) == 2 and not exact.truncated


@pytest.mark.parametrize(
    "statement",
    [
        "delete from po",
        "  -- sneaky\n/* block */ update po set amount = 0",
        "insert into po (po) values ('PO-X')",
        "drop table po",
        "pragma query_only = off",
    ],
)
async def test_read_only_rejects_writes_before_sending(
    sqlite_ro: SqlConnector, statement: str
) -> None:
    with pytest.raises(ConnectorRejected, match="read-only") as info:
        await sqlite_ro.query(statement)
    assert not info.value.retryable


async def test_read_only_sqlite_is_enforced_by_the_database_too(
    sqlite_ro: SqlConnector, sqlite_file: Path
) -> None:
    # A CTE in front of DELETE passes the keyword check; the read-only open stops it.
    with pytest.raises(ConnectorRejected, match="read-only violation"):
        await sqlite_ro.query(
            "with doomed as (select 'PO-1' as po) delete from po where po in doomed"
        )
    with sqlite3.connect(sqlite_file) as db:
        assert db.execute("select count(*) from po").fetchone() == (25,)
    db.close()


async def test_writable_connection_commits(sqlite_file: Path) -> None:
    config = SqlConfig(url=f"sqlite+aiosqlite:///{sqlite_file}", read_only=False)
    connector = SqlConnector.from_config("erp", config, {})
    try:
        done = await connector.query(
            "update po set amount = :a where po = :po", {"a": 1, "po": "PO-0"}
        )
        assert done.rowcount == 1 and done.rows == []
        again = await connector.query("select amount from po where po = 'PO-0'")
        assert again.rows == [{"amount": 1}]
    finally:
        await connector.aclose()


async def test_bad_sql_is_rejected_not_retried(sqlite_ro: SqlConnector) -> None:
    with pytest.raises(ConnectorRejected, match="no such column"):
        await sqlite_ro.query("select nope from po")


def test_statement_classification_and_json_safety() -> None:
    assert is_read_statement("/* x */ -- y\n  WITH a AS (select 1) select * from a")
    assert is_read_statement("Select 1")
    assert not is_read_statement("selectx")
    assert not is_read_statement("-- select\nupdate t set a = 1")
    import datetime as dt
    import decimal

    assert json_safe(decimal.Decimal("1.50")) == 1.5
    assert json_safe(decimal.Decimal("1.50"), "str") == "1.50"
    assert json_safe(dt.date(2025, 1, 2)) == "2025-01-02"
    assert json_safe({"a": [b"\x00\x01", dt.timedelta(minutes=1)]}) == {"a": ["AAE=", 60.0]}


def test_password_never_in_url_config() -> None:
    with pytest.raises(ValueError, match="must not contain a password"):
        SqlConfig(url="postgresql+asyncpg://u:hunter2@db/x")


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
async def pg_table(pg_url: str) -> AsyncIterator[tuple[str, str]]:
    table = f"sb_conn_{uuid.uuid4().hex[:10]}"
    raw = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(raw)
    try:
        await conn.execute(
            f"create table {table} (po text primary key, amount numeric(12,2), "
            "booked date, at timestamptz, tags text[], id uuid)"
        )
        await conn.execute(
            f"insert into {table} select 'PO-' || i, 100.25 + i, date '2025-01-01' + i, "
            "timestamptz '2025-01-01 10:00+00', array['a','b'], gen_random_uuid() "
            "from generate_series(1, 30) i"
        )
        yield pg_url, table
    finally:
        await conn.execute(f"drop table if exists {table}")
        await conn.close()


@pytest.mark.postgres
async def test_postgres_query_is_json_safe_and_limited(pg_table: tuple[str, str]) -> None:
    url, table = pg_table
    connector = SqlConnector.from_config("wh", SqlConfig(url=url, max_rows=5), {})
    try:
        one = await connector.query(
            f"select po, amount, booked, at, tags, id from {table} where po = :po", {"po": "PO-2"}
        )
        row: dict[str, Any] = one.rows[0]
        assert row["amount"] == 102.25
        assert row["booked"] == "2025-01-03"
        assert row["at"].startswith("2025-01-01T10:00:00")
        assert row["tags"] == ["a", "b"]
        assert isinstance(row["id"], str) and len(row["id"]) == 36
        many = await connector.query(f"select po from {table} order by po")
        assert len(many.rows) == 5 and many.truncated
    finally:
        await connector.aclose()


@pytest.mark.postgres
async def test_postgres_read_only_transaction_stops_data_modifying_cte(
    pg_table: tuple[str, str],
) -> None:
    url, table = pg_table
    connector = SqlConnector.from_config("wh", SqlConfig(url=url), {})
    try:
        with pytest.raises(ConnectorRejected, match="read-only"):
            await connector.query(f"with d as (delete from {table} returning po) select * from d")
        left = await connector.query(f"select count(*) as n from {table}")
        assert left.rows == [{"n": 30}]
    finally:
        await connector.aclose()


@pytest.mark.postgres
async def test_postgres_password_from_env_and_errors_do_not_leak_it(pg_url: str) -> None:
    config = SqlConfig(url=pg_url, password_env="WH_PASSWORD")
    connector = SqlConnector.from_config("wh", config, {"WH_PASSWORD": "pw-s3cret-789"})
    try:
        assert "pw-s3cret-789" not in repr(connector.engine.url)
        with pytest.raises(ConnectorRejected) as info:  # trust auth ignores the password
            await connector.query("select no_such_column from pg_class")
        assert "pw-s3cret-789" not in str(info.value)
    finally:
        await connector.aclose()


async def test_missing_password_variable_is_a_config_error() -> None:
    config = SqlConfig(url="postgresql+asyncpg://u@db/x", password_env="WH_PASSWORD")
    with pytest.raises(ConnectorConfigError, match="WH_PASSWORD"):
        SqlConnector.from_config("wh", config, {})


async def test_unreachable_database_is_unavailable() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    config = SqlConfig(url=url, retry=RetrySettings(attempts=2, backoff_initial_s=0.01))
    connector = SqlConnector.from_config("wh", config, {})
    try:
        with pytest.raises(ConnectorUnavailable) as info:
            await connector.query("select 1")
        assert info.value.retryable
    finally:
        await connector.aclose()
