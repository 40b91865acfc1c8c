"""`flask --app wsgi grants …`: the grant lifecycle from a terminal."""

from __future__ import annotations

import getpass
import sys

import click
from flask.cli import AppGroup

from gateway.services import get_services
from models.grants import GrantError, GrantStatus, PaymentChannel, find_grant_by_reference, parse_amount
from notifications.casework.grants import change_grant_status
from notifications.sms.queues import kick

grants_group = AppGroup("grants", help="Grant lifecycle.")


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
            _, notice = change_grant_status(
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
    if notice is not None:
        kick(services.redis, notice.priority)
    click.echo(new_status)
