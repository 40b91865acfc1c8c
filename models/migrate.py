"""Alembic, driven from Python: `flask --app wsgi db upgrade` and the test fixtures call these."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from config.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Write a new migration from the difference between the models and the database at `url`."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=False)


def head_revisions() -> frozenset[str]:
    """The revisions the migrations in this checkout end at (one, unless two branches are yet to be merged)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


def database_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database's `alembic_version` table names (empty for a database never migrated)."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())
