"""The database engine and session factory, usable from the web app, workers and the CLI alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Seconds to wait for PostgreSQL to accept a connection; a USSD callback must answer quickly even when it is down.
CONNECT_TIMEOUT_SECONDS = 1
# Milliseconds a single statement may run inside a web request before PostgreSQL cancels it.
STATEMENT_TIMEOUT_MS = 5000
# Seconds SQLite waits on a locked file (web and worker processes write the same file in development).
SQLITE_BUSY_TIMEOUT_SECONDS = 5


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with short connect timeouts; SQLite gets WAL and foreign keys, as PostgreSQL behaves."""
    if url.startswith("postgresql"):
        connect_args = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        }
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # The driver's own transaction handling starts transactions late and lets the release of a first
        # savepoint commit; SQLAlchemy's documented remedy: the driver stays out, and we say BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints instead of at every commit: a commit stays atomic and survives a
        # crash of the process; only the last transactions can be lost if the machine loses power. FULL made
        # every writing USSD hop wait for an fsync.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        # IMMEDIATE takes the write lock up front: two transactions that read and then write would otherwise
        # deadlock on the upgrade, and SQLite answers one of them "database is locked" at once. SQLite is for
        # development and tests, where serialising writers costs nothing that matters.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """Owns one engine and its session factory. `with db.session() as s:` commits on success, rolls back on error."""

    def __init__(self, url: str, **engine_kwargs):
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
