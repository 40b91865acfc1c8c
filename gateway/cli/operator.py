"""Who runs a CLI command, as an `Actor`: the operator by login name, or the staff account named by `--as`."""

from __future__ import annotations

import getpass
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from models.actors import Actor, Via
from models.staff import find_staff


def as_option(command: Callable) -> Callable:
    """The `--as EMAIL` option of every command that is a staff action."""
    return click.option(
        "--as",
        "as_email",
        default=None,
        metavar="EMAIL",
        help="Act as this staff account (its role and districts apply); default: you, by login name, unlimited.",
    )(command)


def cli_actor(session: Session, as_email: str | None) -> Actor:
    """The actor of a command: `--as EMAIL`'s active account, else `cli:<login>` with the server's authority."""
    if not as_email:
        return Actor.operator(getpass.getuser())
    user = find_staff(session, as_email)
    if user is None or not user.active:
        raise click.ClickException(f"no active staff account {as_email}")
    return Actor.for_staff(user, Via.CLI)
