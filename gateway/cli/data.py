"""`flask --app wsgi data …`: personal data over its life (key rotation, export, erasure)."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from gateway.cli.operator import as_option, cli_actor
from gateway.services import get_services
from models.actors import PermissionDeniedError
from models.crypto import keys_of
from models.rotation import rotate_national_ids
from notifications.casework.privacy import PrivacyError, erase_person, export_person

data_group = AppGroup("data", help="Personal data: key rotation, export, erasure.")


@data_group.command("rotate-key")
def data_rotate_key() -> None:
    """Re-encrypt every national ID under the newest DATA_ENCRYPTION_KEY (the first of the list), in small batches."""
    settings = get_services().settings
    result = rotate_national_ids(get_services().db, keys_of(settings))
    click.echo(f"re-encrypted {result.rewritten}, already under the newest key {result.current}")
    click.echo("every national ID is under the newest key; older keys may now be removed from DATA_ENCRYPTION_KEY")


@data_group.command("export")
@click.argument("reference")
@as_option
def data_export(reference: str, as_email: str | None) -> None:
    """Print everything held about the person with REFERENCE as one JSON document (audited)."""
    try:
        with get_services().db.session() as session:
            document = export_person(session, cli_actor(session, as_email), reference)
    except (PrivacyError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@data_group.command("erase")
@click.argument("reference")
@click.option("--reason", required=True, help="Why (kept in the audit log; write no personal data here).")
@as_option
def data_erase(reference: str, reason: str, as_email: str | None) -> None:
    """Erase the person with REFERENCE, keeping what the reports count (audited)."""
    services = get_services()
    try:
        with services.db.session() as session:
            erasure = erase_person(session, services.redis, cli_actor(session, as_email), reference, reason)
    except (PrivacyError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"erased {erasure.reference}: {erasure.messages_cancelled} pending SMS cancelled, "
        f"{erasure.messages_cleared} SMS bodies cleared, {erasure.redis_keys_deleted} USSD keys deleted"
    )
