"""The SQL connector behind the workflow ``sql`` step: any SQLAlchemy async URL.

::

    erp = SqlConnector.from_config("erp", SqlConfig(url="postgresql+asyncpg://ro@db/erp",
                                                    password_env="ERP_DB_PASSWORD"), env)
    result = await erp.query("select amount from purchase_orders where po = :po", {"po": po})
    result.rows        # [{"amount": 1200.5}], JSON-safe values
    result.truncated   # True when more than max_rows rows matched

Queries are parameterised only: values travel as bind parameters (``:name``), never through
string formatting, so user text cannot change the statement.

Read-only connections (the default) are enforced in layers, because the statement check alone
cannot see a data-modifying CTE (``WITH d AS (DELETE …) SELECT …``):

1. the statement must start with SELECT or WITH (after comments);
2. SQLite files are opened with ``mode=ro`` and ``PRAGMA query_only``; PostgreSQL runs each query
   in a ``READ ONLY`` transaction with a ``statement_timeout``; other databases rely on (1) and
   on a read-only database account, which operators should use anyway.

Values are made JSON-safe: Decimal → float (or str, ``decimal_as: str``), date/time → ISO 8601,
UUID → str, bytes → base64, timedelta → seconds.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors.base import Hooks, make_guard
from connectors.config import SqlConfig, resolve_secret
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorRejected,
    ConnectorUnavailable,
    redact,
)
from connectors.resilience import Guard

__all__ = ["SqlConnector", "SqlResult", "is_read_statement", "json_safe"]

_LEADING_NOISE = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_READ_KEYWORDS = frozenset({"select", "with"})
# SQLSTATE classes worth retrying: connection, transaction rollback (deadlock, serialization),
# insufficient resources, operator intervention (cancel, shutdown), system error.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_SQLITE_TRANSIENT = ("database is locked", "table is locked", "disk i/o error", "unable to open")


@dataclass(frozen=True)
class SqlResult:
    rows: list[dict[str, Any]]
    truncated: bool
    """True when the query matched more than the row limit."""
    rowcount: int | None = None
    """Rows affected by a write (read_only: false); None for queries."""


def is_read_statement(statement: str) -> bool:
    """Whether the first keyword after comments and whitespace is SELECT or WITH."""
    noise = _LEADING_NOISE.match(statement)
    rest = statement[noise.end() if noise else 0 :]
    first = re.match(r"[A-Za-z]+", rest)
    return first is not None and first.group(0).lower() in _READ_KEYWORDS


def json_safe(value: Any, decimal_as: Literal["float", "str"] = "float") -> Any:
    """Convert one database value into something ``json.dumps`` accepts."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value) if decimal_as == "float" else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, decimal_as) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, decimal_as) for v in value]
    return str(value)  # enums, IP addresses, ranges: their text form is what a template wants


def _sqlite_read_only(url: URL) -> URL:
    """Open a SQLite file read-only through a URI filename (``mode=ro``)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    return url.set(
        database="file:" + quote(database),
        query={**url.query, "mode": "ro", "uri": "true"},
    )


class SqlConnector:
    kind = "sql"

    def __init__(self, name: str, engine: AsyncEngine, config: SqlConfig, guard: Guard) -> None:
        self.name = name
        self.engine = engine
        self.config = config
        self.guard = guard

    @classmethod
    def from_config(
        cls, name: str, config: SqlConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> SqlConnector:
        if config.url_env:
            raw = resolve_secret(env, config.url_env, connection=name, field="url_env")
            url = cls._parse_url(name, raw.get_secret_value())
        else:
            url = cls._parse_url(name, config.url or "")
        if config.password_env:
            password = resolve_secret(
                env, config.password_env, connection=name, field="password_env"
            )
            url = url.set(password=password.get_secret_value())
        secrets = tuple(s for s in (url.password,) if isinstance(s, str) and s)
        backend = url.get_backend_name()
        if config.read_only and backend == "sqlite":
            url = _sqlite_read_only(url)
        engine = create_async_engine(url, pool_pre_ping=True)
        if config.read_only and backend == "sqlite":

            @event.listens_for(engine.sync_engine, "connect")
            def _query_only(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA query_only = ON")
                cursor.close()

        guard = make_guard(name, config, hooks or Hooks(), secrets=secrets)
        return cls(name, engine, config, guard)

    @staticmethod
    def _parse_url(name: str, raw: str) -> URL:
        try:
            return make_url(raw)
        except exc.ArgumentError:
            # The message would quote the URL, which may hold a password.
            raise ConnectorConfigError("the database URL is not valid", connection=name) from None

    async def query(
        self, statement: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> SqlResult:
        """Run one parameterised statement and return at most ``limit`` rows as dicts.

        ``limit`` defaults to, and may not exceed, the connection's ``max_rows``.
        """
        is_read = is_read_statement(statement)
        if self.config.read_only and not is_read:
            raise ConnectorRejected(
                "connection is read-only: only SELECT or WITH statements are allowed",
                connection=self.name,
            )
        cap = min(limit or self.config.max_rows, self.config.max_rows)
        return await self.guard.call(
            lambda: self._run_once(statement, dict(params or {}), cap, is_read), idempotent=is_read
        )

    async def _run_once(
        self, statement: str, params: dict[str, Any], cap: int, is_read: bool
    ) -> SqlResult:
        try:
            async with asyncio.timeout(self.config.timeout_s), self.engine.connect() as conn:
                if self.config.read_only:
                    await self._begin_read_only(conn)
                if is_read:
                    # A streamed (server-side) cursor, so a huge result is never loaded whole:
                    # one row past the cap tells us whether it was truncated.
                    streamed = await conn.stream(text(statement), params)
                    outcome = self._rows(await streamed.fetchmany(cap + 1), cap)
                    await streamed.close()
                else:
                    result = await conn.execute(text(statement), params)
                    if result.returns_rows:  # INSERT … RETURNING
                        outcome = self._rows(result.fetchmany(cap + 1), cap)
                    else:
                        outcome = SqlResult([], truncated=False, rowcount=result.rowcount)
                if self.config.read_only:
                    await conn.rollback()
                else:
                    await conn.commit()
                return outcome
        except TimeoutError as err:
            raise ConnectorUnavailable(
                f"query timed out after {self.config.timeout_s}s", connection=self.name
            ) from err
        except exc.DBAPIError as err:
            raise self._translate(err.orig if err.orig is not None else err, err) from err
        except (OSError, exc.TimeoutError) as err:  # could not reach the server at all
            raise ConnectorUnavailable(
                f"cannot connect ({type(err).__name__})", connection=self.name, not_processed=True
            ) from err
        except Exception as err:
            # SQLAlchemy's asyncpg server-side cursor lets errors of the first fetch out
            # untranslated (asyncpg.PostgresError); they carry a SQLSTATE. Anything else is a
            # bug and propagates unchanged.
            if isinstance(getattr(err, "sqlstate", None), str):
                raise self._translate(err, None) from err
            raise

    def _rows(self, fetched: Sequence[Row[Any]], cap: int) -> SqlResult:
        rows = [
            {str(k): json_safe(v, self.config.decimal_as) for k, v in row._mapping.items()}
            for row in fetched[:cap]
        ]
        return SqlResult(rows, truncated=len(fetched) > cap)

    async def _begin_read_only(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            millis = int(self.config.timeout_s * 1000)
            await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")

    def _translate(self, driver_error: BaseException, err: exc.DBAPIError | None) -> ConnectorError:
        detail = redact(str(driver_error), self.guard.secrets)
        lowered = detail.lower()
        if "read-only" in lowered or "readonly" in lowered:
            return ConnectorRejected(f"read-only violation: {detail}", connection=self.name)
        # Transient or permanent? PostgreSQL says so in its SQLSTATE class; sqlite3 lumps
        # syntax errors and a locked file together as OperationalError, so read its message.
        sqlstate = getattr(driver_error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            transient = sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
        elif self.engine.dialect.name == "sqlite":
            transient = any(marker in lowered for marker in _SQLITE_TRANSIENT)
        else:
            transient = isinstance(err, exc.OperationalError | exc.InterfaceError)
        if transient or (err is not None and err.connection_invalidated):
            return ConnectorUnavailable(f"database unavailable: {detail}", connection=self.name)
        return ConnectorRejected(f"statement failed: {detail}", connection=self.name)

    async def aclose(self) -> None:
        await self.engine.dispose()
