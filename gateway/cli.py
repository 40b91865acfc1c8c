"""Operator commands: `flask --app wsgi <command>`. Each parses its arguments and calls one domain function."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from gateway.services import get_services
from models import migrate
from models.audit import record
from models.base import utcnow
from models.grants import GrantError, GrantStatus, PaymentChannel, find_grant_by_reference, parse_amount
from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.people import get_or_create_contact
from models.phone import PhoneNumberError, mask_phone, normalize_phone
from models.staff import Role, StaffError, StaffUser, create_staff, find_staff, issue_token
from notifications.grants import change_grant_status
from notifications.outbox import owe_text, requeue_failed
from notifications.queues import kick
from notifications.worker import run_worker

db_group = AppGroup("db", help="Database migrations (Alembic).")
grants_group = AppGroup("grants", help="Grant lifecycle.")
sms_group = AppGroup("sms", help="Outbound SMS.")
staff_group = AppGroup("staff", help="Staff accounts and API tokens.")


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


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queues are empty (for scripts and tests).")
def worker_command(burst: bool) -> None:
    """Run the background workers: all gateway queues, transactional first, with the scheduler and the sweep."""
    services = get_services()
    run_worker(services.settings.replace(redis_url=services.redis_url), burst=burst)


@sms_group.command("send")
@click.argument("phone")
@click.argument("text")
def sms_send(phone: str, text: str) -> None:
    """Queue one SMS to PHONE (sent by the workers); prints the message id."""
    services = get_services()
    try:
        normalized = normalize_phone(phone)
    except PhoneNumberError as exc:
        raise click.ClickException(f"{phone}: {exc}") from None
    if not text.strip():
        raise click.ClickException("the text is empty")
    with services.db.session() as session:
        contact = get_or_create_contact(session, normalized)
        message = owe_text(session, contact, MessageKind.STAFF, text)
        message_id = message.id
    kick(services.redis, MessagePriority.TRANSACTIONAL)
    click.echo(message_id)


@sms_group.command("status")
@click.argument("message_id", type=int)
def sms_status(message_id: int) -> None:
    """Show one message's lifecycle fields."""
    with get_services().db.session() as session:
        message = session.get(OutboundMessage, message_id)
        if message is None:
            raise click.ClickException(f"no message {message_id}")
        for name in (
            "id",
            "status",
            "kind",
            "priority",
            "language",
            "parts",
            "attempts",
            "provider_message_id",
            "cost",
            "failure_reason",
            "last_error",
            "created_at",
            "submitted_at",
            "final_at",
        ):
            value = getattr(message, name)
            click.echo(f"{name:20} {'-' if value is None else value}")
        click.echo(f"{'to':20} {mask_phone(message.phone)}")


@sms_group.command("retry-failed")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="Only messages created since this UTC time.",
)
def sms_retry_failed(since) -> None:
    """Queue failed messages again (after an outage, or an OutcomeUnknown alert); prints how many."""
    services = get_services()
    with services.db.session() as session:
        count = requeue_failed(session, since.replace(tzinfo=UTC) if since else None)
    for priority in MessagePriority:
        kick(services.redis, priority)
    click.echo(count)


def _cli_actor() -> str:
    """Who ran the command, for the audit log."""
    return f"cli:{getpass.getuser()}"


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
def staff_create(email: str, role: str, districts: str, password_stdin: bool) -> None:
    """Create a staff account and print its id; refuses a taken e-mail, an unknown district and a short password."""
    password = _read_new_password(password_stdin)
    actor = _cli_actor()
    try:
        with get_services().db.session() as session:
            user = create_staff(session, email, role, password, districts)
            record(
                session,
                actor,
                "staff.create",
                "staff_user",
                user.id,
                email=user.email,
                role=user.role,
                districts=list(user.district_list),
            )
            user_id = user.id
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(user_id)


@staff_group.command("token")
@click.option("--email", required=True, help="The staff account the token acts as.")
@click.option("--name", default="api", show_default=True, help="What the token is for, to tell tokens apart.")
def staff_token(email: str, name: str) -> None:
    """Issue an API token and print it. It is shown this once: only its hash is stored."""
    try:
        with get_services().db.session() as session:
            user = find_staff(session, email)
            if user is None:
                raise StaffError(f"no staff account for {email}")
            token, plaintext = issue_token(session, user, name)
            record(
                session,
                _cli_actor(),
                "token.issue",
                "api_token",
                token.id,
                staff_user=user.email,
                name=token.name,
                prefix=token.prefix,
            )
    except StaffError as exc:
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


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(grants_group)
    app.cli.add_command(sms_group)
    app.cli.add_command(staff_group)
    app.cli.add_command(worker_command)
    from gateway import devserver, simulator

    app.cli.add_command(devserver.dev_command)
    app.cli.add_command(simulator.ussd_sim_command)
