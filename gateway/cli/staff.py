"""`flask --app wsgi staff …`: staff accounts and API tokens."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from gateway.cli.operator import as_option, cli_actor
from gateway.services import get_services
from models.actors import PermissionDeniedError
from models.base import utcnow
from models.staff import Role, StaffError, StaffUser, find_staff
from models.staff_actions import create_staff_account, issue_api_token

staff_group = AppGroup("staff", help="Staff accounts and API tokens.")


def _read_new_password(from_stdin: bool) -> str:
    """The password from one line of stdin (scripts), else typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@staff_group.command("create")
@click.option("--email", required=True, help="Login e-mail address (stored in lower case).")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role], case_sensitive=False))
@click.option("--districts", default="", help="Comma-separated districts an officer or viewer is limited to.")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin instead of a prompt.")
@as_option
def staff_create(email: str, role: str, districts: str, password_stdin: bool, as_email: str | None) -> None:
    """Create a staff account and print its id; refuses a taken e-mail, an unknown district and a short password."""
    password = _read_new_password(password_stdin)
    try:
        with get_services().db.session() as session:
            user = create_staff_account(session, cli_actor(session, as_email), email, role, password, districts)
            user_id = user.id
    except (StaffError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(user_id)


@staff_group.command("token")
@click.option("--email", required=True, help="The staff account the token acts as.")
@click.option("--name", default="api", show_default=True, help="What the token is for, to tell tokens apart.")
@as_option
def staff_token(email: str, name: str, as_email: str | None) -> None:
    """Issue an API token and print it. It is shown this once: only its hash is stored."""
    try:
        with get_services().db.session() as session:
            actor = cli_actor(session, as_email)
            user = find_staff(session, email)
            if user is None:
                raise StaffError(f"no staff account for {email}")
            token, plaintext = issue_api_token(session, actor, user, name)
    except (StaffError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"token {token.prefix}… for {user.email}; it is shown only now:", err=True)
    click.echo(plaintext)


@staff_group.command("list")
def staff_list() -> None:
    """Every staff account: id, e-mail, role, districts, state, last login."""
    with get_services().db.session() as session:
        users = session.execute(select(StaffUser).order_by(StaffUser.email)).scalars().all()
        now = utcnow()
        for user in users:
            state = "locked" if user.is_locked(now) else "active" if user.active else "disabled"
            districts = ",".join(user.district_list) or "all districts"
            last_login = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
            click.echo(f"{user.id:>4}  {user.email:40} {user.role:8} {state:8} {last_login:16}  {districts}")
