"""`flask --app wsgi grants …`: the grant lifecycle from a terminal."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from gateway.cli.operator import as_option, cli_actor
from gateway.services import get_services
from models.actors import PermissionDeniedError
from models.grants import GrantError, GrantRules, GrantStatus, PaymentChannel, parse_amount
from notifications.casework.grants import move_grant_for
from notifications.sms.queues import kick

grants_group = AppGroup("grants", help="Grant lifecycle.")


@grants_group.command("set-status")
@click.argument("reference")
@click.argument("status", type=click.Choice([s.value for s in GrantStatus]))
@click.option("--amount", help="Grant amount in maloti, e.g. 1500 or M1,500.00.")
# Checked by the grant move itself, so an unknown channel is refused with the same words as in the console and API.
@click.option("--channel", metavar="|".join(PaymentChannel), help="Payment channel.")
@click.option("--payment-reference", help="The payment's reference from the channel.")
@click.option("--reason", help="Why (required for not_eligible and withdrawn).")
@as_option
def grants_set_status(reference, status, amount, channel, payment_reference, reason, as_email) -> None:
    """Move one grant; prints the new status, or the reason and exit status 1 when the move is refused."""
    services = get_services()
    try:
        with services.db.session() as session:
            event, notice = move_grant_for(
                session,
                cli_actor(session, as_email),
                reference,
                status,
                rules=GrantRules.of(services.settings),
                reason=reason,
                amount=parse_amount(amount) if amount else None,
                channel=channel,
                payment_reference=payment_reference,
            )
            new_status = event.to_status
    except (GrantError, PermissionDeniedError) as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    if notice is not None:
        kick(services.redis, notice.priority)
    click.echo(new_status)
