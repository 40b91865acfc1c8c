"""`flask --app wsgi data …`: personal data over its life (key rotation, export, erasure)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gateway.services import get_services
from models.crypto import keys_of
from models.rotation import rotate_national_ids

data_group = AppGroup("data", help="Personal data: key rotation, export, erasure.")


@data_group.command("rotate-key")
def data_rotate_key() -> None:
    """Re-encrypt every national ID under the newest DATA_ENCRYPTION_KEY (the first of the list), in small batches."""
    settings = get_services().settings
    result = rotate_national_ids(get_services().db, keys_of(settings))
    click.echo(f"re-encrypted {result.rewritten}, already under the newest key {result.current}")
    click.echo("every national ID is under the newest key; older keys may now be removed from DATA_ENCRYPTION_KEY")
