"""`flask --app wsgi sms …` and `worker`: outbound SMS and the workers that send them."""

from __future__ import annotations

from datetime import UTC

import click
from flask.cli import AppGroup, with_appcontext

from gateway.services import get_services
from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.people import get_or_create_contact
from models.phone import PhoneNumberError, mask_phone, normalize_phone
from notifications.sms.outbox import owe_text, requeue_failed
from notifications.sms.queues import kick
from notifications.sms.worker import run_worker

sms_group = AppGroup("sms", help="Outbound SMS.")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queues are empty (for scripts and tests).")
@click.option("--metrics-port", type=int, default=None, help="Serve this worker's /healthz (and /metrics) on PORT.")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address for --metrics-port.")
def worker_command(burst: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Run the background workers: all gateway queues, transactional first, with the scheduler and the sweep."""
    services = get_services()
    settings = services.settings.replace(redis_url=services.redis_url)
    run_worker(settings, burst=burst, metrics_port=metrics_port, metrics_host=metrics_host)


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
