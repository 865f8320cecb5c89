"""The only code that opens database sessions.

SQLite (WAL) is the embedded default: one writer at a time, so write
transactions take the lock up front (``BEGIN IMMEDIATE``) instead of failing on
upgrade, and an in-process lock queues this process's writers fairly.
PostgreSQL is the scale-out engine: workers claim jobs with
``FOR UPDATE SKIP LOCKED`` and any number of processes share it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


class Store:
    """Owns the async engine; hands out short transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, schema: str | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = _make_engine(url, pool_size, schema)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer: queue ours here rather than spin on SQLITE_BUSY.
        self._write_lock = WriterQueue() if self.is_sqlite else None
        # WAL readers never block the writer: reads get their own, deferred, transactions.
        self._read_engine = (
            _make_engine(url, pool_size, schema, begin="BEGIN") if (self.is_sqlite) else self.engine
        )
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._shared: dict[str, object] = {}
        self._direct: DirectSQLite | None = DirectSQLite(url) if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """One short read-write transaction; commits on success, rolls back on error.

        ``urgent``: a transaction someone is waiting for (Slack's ack path); on SQLite it
        goes ahead of queued background writers (workers, timers).
        """
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        await self._write_lock.acquire(urgent=urgent)
        try:
            async with self._sessions() as session, session.begin():
                yield session
        finally:
            self._write_lock.release()

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """One helper per store and ``key`` (a ``GroupCommit``, say), made on first use."""
        if key not in self._shared:
            self._shared[key] = make()
        return cast(T, self._shared[key])

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only snapshot; on SQLite it neither waits for nor holds the write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def direct_write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite only, inside ``transaction()`` before its session is used (so the write
        lock is held and SQLAlchemy has begun nothing): ``write`` runs in a BEGIN IMMEDIATE
        … COMMIT of its own, on a connection of its own, in one hand-over to the driver's
        thread (a statement through SQLAlchemy's session takes three)."""
        if self._direct is None:
            raise RuntimeError("direct_write is for SQLite")
        return await self._direct.write(write)

    async def dispose(self) -> None:
        if self._direct is not None:
            await self._direct.close()
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


def is_database_outage(exc: BaseException) -> bool:
    """The database is unreachable, restarting or dropped the connection: nobody's fault.

    SQLAlchemy wraps most driver errors in ``DBAPIError``, but errors raised while a
    pool connects (asyncpg's ``CannotConnectNowError`` during a restart, a refused
    socket) can reach us unwrapped; those come from the driver's own modules.
    """
    if isinstance(exc, DBAPIError | OSError):
        return True
    return type(exc).__module__.split(".")[0] in ("asyncpg", "aiosqlite", "sqlite3")


class WriterQueue:
    """One writer at a time, urgent writers first, then the others in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._waiting:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._waiting).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn was handed to us just as we were cancelled
            else:
                (self._urgent if urgent else self._waiting).remove(turn)
            raise

    def release(self) -> None:
        """Hand the lock straight to the next writer (it stays held), or free it."""
        for queue in (self._urgent, self._waiting):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


class DirectSQLite:
    """One aiosqlite connection, opened on first use with the engine's pragmas, for writes
    that are one function on the ``sqlite3`` connection (``Store.direct_write``)."""

    def __init__(self, url: str) -> None:
        self._path = make_url(url).database or ""
        self._conn: aiosqlite.Connection | None = None

    async def write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        opened = self._conn is None
        if self._conn is None:
            self._conn = await aiosqlite.connect(self._path, isolation_level=None)
        # aiosqlite's own queue (``_execute``): the whole transaction is one hand-over.
        result: T = await self._conn._execute(  # type: ignore[no-untyped-call]
            _in_transaction, self._conn._conn, write, opened
        )
        return result

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


def _in_transaction(
    conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], T], opened: bool
) -> T:
    """Runs in the driver's thread: the pragmas once, then BEGIN IMMEDIATE … COMMIT."""
    if opened:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = write(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _make_engine(
    url: str, pool_size: int, schema: str | None, begin: str = "BEGIN IMMEDIATE"
) -> AsyncEngine:
    if not url.startswith("sqlite"):
        # A schema lets several installations (or test cases) share one database.
        connect_args = {"server_settings": {"search_path": schema}} if schema else {}
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    if ":memory:" in url or url.endswith("://"):
        raise ValueError("use a SQLite file: an in-memory database is not shared by connections")
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the documented aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
