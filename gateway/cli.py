"""Operator commands: `flask --app wsgi <command>`. Each parses its arguments and calls one domain function."""

from __future__ import annotations

import getpass
import sys

import click
from flask import Flask

from gateway.services import get_services
from models import migrate
from models.grants import GrantError, GrantStatus, PaymentChannel, find_grant_by_reference, parse_amount
from notifications.grants import change_grant_status

db_group = click.Group("db", help="Database migrations (Alembic).")
grants_group = click.Group("grants", help="Grant lifecycle.")


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


@grants_group.command("set-status")
@click.argument("reference")
@click.argument("status", type=click.Choice([s.value for s in GrantStatus]))
@click.option("--amount", help="Grant amount in maloti, e.g. 1500 or M1,500.00.")
@click.option("--channel", type=click.Choice([c.value for c in PaymentChannel]), help="Payment channel.")
@click.option("--payment-reference", help="The payment's reference from the channel.")
@click.option("--reason", help="Why (required for not_eligible and withdrawn).")
@click.option("--actor", default=None, help="Who makes the change (default: cli:<user>).")
def grants_set_status(reference, status, amount, channel, payment_reference, reason, actor) -> None:
    """Move one grant; prints the new status, or the reason and exit status 1 when the move is refused."""
    services = get_services()
    actor = actor or f"cli:{getpass.getuser()}"
    try:
        with services.db.session() as session:
            grant = find_grant_by_reference(session, reference.strip())
            if grant is None:
                raise GrantError(f"no beneficiary with reference {reference}")
            change_grant_status(
                session,
                grant,
                status,
                actor=actor,
                reason=reason,
                amount=parse_amount(amount) if amount else None,
                channel=channel,
                payment_reference=payment_reference,
            )
            new_status = grant.status
    except GrantError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    click.echo(new_status)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(grants_group)
    from gateway import devserver, simulator

    app.cli.add_command(devserver.dev_command)
    app.cli.add_command(simulator.ussd_sim_command)
