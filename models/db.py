"""The database engine and session factory, usable from the web app, workers and the CLI alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

# What the Core-statement functions of `models` accept: a `Database.connection()` (the USSD hop, where the ORM's
# unit of work costs more than the statements) or an ORM session (the console, the CLI, the workers). Those
# functions build their statements once, on the tables, with bound parameters: a statement built per call with
# its values in it costs SQLAlchemy more CPU (coercion, cache key) than SQLite takes to run it.
Executor = Connection | Session

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


def dialect_name(executor: Executor) -> str:
    """`sqlite` or `postgresql`, for the few statements the two spell differently."""
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    return bind.dialect.name


def insert_on_conflict(dialect: str, table):
    """An `INSERT` that can say `ON CONFLICT` (`on_conflict_do_nothing`, `on_conflict_do_update`): SQLite and
    PostgreSQL spell it the same, but SQLAlchemy keeps one construct per dialect."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


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

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction, committed on success: for the USSD hop's few short statements.

        An ORM session costs ~0.25 ms of CPU a transaction before it runs a statement, about what the statements
        of a hop cost themselves; the hop's functions are written in Core so that they take either.
        """
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
