"""The database connection: SQLite (WAL, busy timeout, ``BEGIN IMMEDIATE`` writes) or PostgreSQL (psycopg 3).

Every write goes through :meth:`Database.write`, which serialises writers: SQLite's ``BEGIN IMMEDIATE`` takes the
write lock up front, PostgreSQL takes one transaction-scoped advisory lock. Quota, idempotency and duplicate checks
then read and write in one transaction that no other writer can interleave with; unique constraints stay as the
second guard. A database that cannot be reached raises :class:`DatabaseUnavailable` (the API answers 503).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from dpbench.errors import DpbenchError
from dpbench_leaderboard.config import redacted

WRITE_LOCK = 0x64706265  # the advisory lock key serialising PostgreSQL writers ("dpbe")
BUSY_TIMEOUT_MS = 10_000


class DatabaseUnavailable(DpbenchError):
    """The database could not be reached or went away mid-request; the request may be retried."""


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver issues no BEGIN of its own: _sqlite_begin does
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    write = connection.get_execution_options().get("dpbench_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                               pool_size=8, max_overflow=24, pool_timeout=30)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=24, pool_timeout=30,
                         connect_args={"connect_timeout": 5})


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is down, unreachable, locked for too long or dropped the connection."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Database:
    """An engine over one database URL, with read and serialised write sessions and the migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(dpbench_write=True)

    def __repr__(self) -> str:
        return f"Database({redacted(self.url)!r})"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read session: a deferred transaction, ended (never committed) when the block closes; objects read stay
        usable after it."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except DBAPIError as exc:
            if unavailable(exc):
                raise DatabaseUnavailable(f"database unavailable ({exc.__class__.__name__})") from exc
            raise

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction no other writer interleaves with; committed when the block ends without error."""
        try:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                if self.dialect == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
                yield session
        except DBAPIError as exc:
            if unavailable(exc):
                raise DatabaseUnavailable(f"database unavailable ({exc.__class__.__name__})") from exc
            raise

    def migrate(self) -> str:
        """Bring the schema to the newest migration (Alembic); returns the revision now in place."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        config = Config()
        config.set_main_option("script_location", str(files("dpbench_leaderboard") / "migrations"))
        try:
            with self._writer.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                revision = MigrationContext.configure(connection).get_current_revision()
        except DBAPIError as exc:
            if unavailable(exc):
                raise DatabaseUnavailable(f"cannot reach {redacted(self.url)} ({exc.__class__.__name__}: "
                                          f"{str(exc.orig).strip().splitlines()[0] if exc.orig else ''})") from exc
            raise
        return revision or "base"

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
