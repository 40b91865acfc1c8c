"""`flask --app wsgi db …`: database migrations (Alembic)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gateway.services import get_services
from models import migrate

db_group = AppGroup("db", help="Database migrations (Alembic).")


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(get_services().settings.database_url, revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (`base` empties the schema)."""
    migrate.downgrade(get_services().settings.database_url, revision)


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    migrate.revision(get_services().settings.database_url, message)


@db_group.command("current")
def db_current() -> None:
    """Show the revision the database is at."""
    migrate.current(get_services().settings.database_url)
