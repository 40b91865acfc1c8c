"""Retention: personal data the gateway no longer needs goes, in small batches, from the worker's sweep.

Each rule picks at most `RETENTION_BATCH` row ids, changes those rows in one short transaction, and repeats until a
batch comes back short, so that no table is locked for long and a registration never waits on it. Every rule's
condition excludes the rows it has already done (an emptied text, a deleted row), so a second pass changes
nothing. The periods are settings (`RETENTION_*`, config/settings.py), justified in docs/data-protection.md.
Registration drafts need no rule here: Redis expires them after `REGISTRATION_DRAFT_TTL_SECONDS`.

The tables that grow with every campaign (outbound messages, delivery reports, USSD session records) are read
through an index on the time their period counts from, oldest first (`ORDER BY` that column): a batch reads only the
rows it changes, so emptying a month costs that month's rows, not a scan of years of history per batch
(bench/growth.py measures it at 10 million messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Executable, Select, String, cast, delete, exists, literal, literal_column, select, update

from config import Settings
from models.audit import AuditLog
from models.base import utcnow
from models.db import Database
from models.messages import FINAL_MESSAGE_STATUSES, DeliveryReport, InboundMessage, MessageKind, OutboundMessage
from models.people import Beneficiary, Contact
from models.requests import CallbackRequest, Feedback
from models.ussd import UssdSessionRecord
from notifications.casework.privacy import ERASED_PHONE_PREFIX
from notifications.sms.runtime import Runtime

# Rows changed per transaction.
RETENTION_BATCH = 500
# How often a pass runs, across all workers (the sweep itself runs every few seconds).
RETENTION_INTERVAL_SECONDS = 3600
RETENTION_DUE_KEY = "retention:ran"


def _in_batches(database: Database, batch: int, ids_statement, change) -> int:
    """Run `change(ids)` over the ids `ids_statement` finds, a batch per transaction; the number of rows changed."""
    done = 0
    while True:
        with database.session() as session:
            ids = list(session.execute(ids_statement.limit(batch)).scalars())
            if ids:
                session.execute(change(ids), execution_options={"synchronize_session": False})
        done += len(ids)
        if len(ids) < batch:
            return done


def _before(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


@dataclass(frozen=True)
class RetentionRule:
    name: str  # the key of its count in `apply_retention`'s answer
    ids: Select  # the ids of rows it still has to change, oldest first where the period counts from a time
    change: Callable[[list[int]], Executable]  # the statement that changes those rows


def retention_rules(settings: Settings, now: datetime) -> list[RetentionRule]:
    """Every retention rule as of `now`, in the order they run."""
    sessions_cutoff = _before(now, settings.retention_ussd_session_days)
    inbound_cutoff = _before(now, settings.retention_inbound_sms_days)
    body_cutoff = _before(now, settings.retention_sms_body_days)
    reports_cutoff = _before(now, settings.retention_delivery_report_days)
    audit_cutoff = _before(now, settings.retention_audit_days)
    quiet_cutoff = _before(now, settings.retention_unregistered_days)
    unregistered = ~exists().where(Beneficiary.contact_id == Contact.id)
    quiet_contacts = select(Contact.id).where(unregistered, Contact.updated_at < quiet_cutoff)
    referenced = [
        exists().where(table.contact_id == Contact.id)
        for table in (OutboundMessage, InboundMessage, CallbackRequest, Feedback)
    ]
    return [
        RetentionRule(
            "ussd_sessions_deleted",
            select(UssdSessionRecord.id)
            .where(UssdSessionRecord.recorded_at < sessions_cutoff)
            .order_by(UssdSessionRecord.recorded_at),
            lambda ids: delete(UssdSessionRecord).where(UssdSessionRecord.id.in_(ids)),
        ),
        RetentionRule(
            "inbound_texts_cleared",
            select(InboundMessage.id).where(InboundMessage.received_at < inbound_cutoff, InboundMessage.text != ""),
            lambda ids: update(InboundMessage).where(InboundMessage.id.in_(ids)).values(text=""),
        ),
        RetentionRule(
            "sms_bodies_cleared",
            # `body <> ''` as written in the partial index ix_outbound_messages_final_body, so that it is used.
            select(OutboundMessage.id)
            .where(
                OutboundMessage.status.in_(FINAL_MESSAGE_STATUSES),
                OutboundMessage.final_at < body_cutoff,
                OutboundMessage.body != literal_column("''"),
            )
            .order_by(OutboundMessage.final_at),
            lambda ids: update(OutboundMessage).where(OutboundMessage.id.in_(ids)).values(body=""),
        ),
        # The "your data was deleted" SMS keeps the person's number only until it is final (erasure_requests.py).
        RetentionRule(
            "erasure_notice_numbers_cleared",
            select(OutboundMessage.id).where(
                OutboundMessage.kind == MessageKind.ERASURE_NOTICE,
                OutboundMessage.status.in_(FINAL_MESSAGE_STATUSES),
                OutboundMessage.phone.not_like(f"{ERASED_PHONE_PREFIX}%"),
            ),
            lambda ids: (
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(ids))
                .values(phone=literal(ERASED_PHONE_PREFIX) + cast(OutboundMessage.contact_id, String))
            ),
        ),
        RetentionRule(
            "delivery_reports_deleted",
            select(DeliveryReport.id)
            .where(DeliveryReport.received_at < reports_cutoff)
            .order_by(DeliveryReport.received_at),
            lambda ids: delete(DeliveryReport).where(DeliveryReport.id.in_(ids)),
        ),
        RetentionRule(
            "audit_entries_deleted",
            select(AuditLog.id).where(AuditLog.at < audit_cutoff).order_by(AuditLog.at),
            lambda ids: delete(AuditLog).where(AuditLog.id.in_(ids)),
        ),
        RetentionRule(
            "unregistered_feedback_cleared",
            select(Feedback.id).where(Feedback.contact_id.in_(quiet_contacts), Feedback.text != ""),
            lambda ids: update(Feedback).where(Feedback.id.in_(ids)).values(text=""),
        ),
        # A number that sent STOP is kept whatever its age: forgetting it would send it bulk SMS again.
        RetentionRule(
            "unregistered_contacts_deleted",
            quiet_contacts.where(Contact.alerts_on.is_(True), *(~condition for condition in referenced)),
            lambda ids: delete(Contact).where(Contact.id.in_(ids)),
        ),
    ]


def apply_retention(
    database: Database, settings: Settings, now: datetime, batch: int = RETENTION_BATCH
) -> dict[str, int]:
    """Apply every retention rule once, `batch` rows per transaction; the rows each changed, by rule name."""
    return {rule.name: _in_batches(database, batch, rule.ids, rule.change) for rule in retention_rules(settings, now)}


def retention_pass(runtime: Runtime) -> dict[str, int]:
    """`apply_retention` for the worker's sweep, at most once per `RETENTION_INTERVAL_SECONDS` across workers."""
    due = runtime.redis.set(RETENTION_DUE_KEY, "1", nx=True, ex=RETENTION_INTERVAL_SECONDS)
    if not due:
        return {}
    try:
        return apply_retention(runtime.db, runtime.settings, utcnow())
    except Exception:
        runtime.redis.delete(RETENTION_DUE_KEY)  # try again at the next sweep rather than in an hour
        raise
