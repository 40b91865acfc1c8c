"""Outbound SMS: every message the gateway owes someone is a row, written before anything is sent.

The row is the source of truth: a message that is in the table will reach the provider, whatever happens to Redis
or a worker in between (see notifications/ for the sending side).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, UtcDateTime
from models.clock import utcnow


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"  # claimed by a worker; the provider call may be in flight
    SUBMITTED = "submitted"
    SENT = "sent"
    BUFFERED = "buffered"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # a bulk message whose campaign was cancelled before it left


class MessageGroup(StrEnum):
    """Where a message stands, as staff count it: campaign progress, the dashboard and the reports all group by this.

    Every status belongs to exactly one group (`MESSAGE_GROUPS`), so counts by group add up to the messages written.
    """

    WAITING = "waiting"  # not handed to the provider yet: queued, or a worker is handing it over now
    SUBMITTED = "submitted"  # accepted by the provider; delivery not reported yet
    DELIVERED = "delivered"
    FAILED = "failed"  # failed, refused by the provider, or expired undelivered
    CANCELLED = "cancelled"  # withdrawn before it left


MESSAGE_GROUPS: dict[MessageStatus, MessageGroup] = {
    MessageStatus.QUEUED: MessageGroup.WAITING,
    MessageStatus.SUBMITTING: MessageGroup.WAITING,
    MessageStatus.SUBMITTED: MessageGroup.SUBMITTED,
    MessageStatus.SENT: MessageGroup.SUBMITTED,
    MessageStatus.BUFFERED: MessageGroup.SUBMITTED,
    MessageStatus.DELIVERED: MessageGroup.DELIVERED,
    MessageStatus.FAILED: MessageGroup.FAILED,
    MessageStatus.REJECTED: MessageGroup.FAILED,
    MessageStatus.EXPIRED: MessageGroup.FAILED,
    MessageStatus.CANCELLED: MessageGroup.CANCELLED,
}


def statuses_in(*groups: MessageGroup) -> frozenset[MessageStatus]:
    """The statuses of the messages in `groups`, for a `status IN (…)` condition."""
    return frozenset(status for status, group in MESSAGE_GROUPS.items() if group in groups)


def count_by_group(counts_by_status: Iterable[tuple[str, int]]) -> dict[MessageGroup, int]:
    """Fold `(status, count)` rows, as a `GROUP BY status` returns them, into counts per group (zeros kept)."""
    totals = dict.fromkeys(MessageGroup, 0)
    for status, count in counts_by_status:
        totals[MESSAGE_GROUPS[MessageStatus(status)]] += count
    return totals


# Messages not handed to the provider yet: a campaign with any of these is not finished.
UNSENT_MESSAGE_STATUSES = statuses_in(MessageGroup.WAITING)
# Messages that have not left and that no worker holds: pausing a campaign holds them, cancelling withdraws them.
# A submitting message may already be at the provider, so it is never withdrawn.
WITHDRAWABLE_MESSAGE_STATUSES = frozenset({MessageStatus.QUEUED})
# Statuses no delivery report may change: the message's fate is known.
FINAL_MESSAGE_STATUSES = statuses_in(MessageGroup.DELIVERED, MessageGroup.FAILED, MessageGroup.CANCELLED)
# Statuses of a message the provider has accepted: it must never be submitted again.
ACCEPTED_MESSAGE_STATUSES = statuses_in(MessageGroup.SUBMITTED, MessageGroup.DELIVERED)
# "Sent" in the reports: handed to the provider and heard back, whatever the outcome. A message refused for an
# invalid number counts as sent and failed, so that the delivery rate (delivered / sent) is not flattered.
SENT_GROUPS = frozenset({MessageGroup.SUBMITTED, MessageGroup.DELIVERED, MessageGroup.FAILED})


class MessagePriority(StrEnum):
    TRANSACTIONAL = "transactional"  # confirmations, grant and payment notices: sent first, never held
    BULK = "bulk"  # campaigns: after transactional, never at night


class MessageKind(StrEnum):
    REGISTRATION_CONFIRMATION = "registration_confirmation"
    GRANT_NOTICE = "grant_notice"
    COVID_TIPS = "covid_tips"
    KEYWORD_REPLY = "keyword_reply"
    ERASURE_NOTICE = "erasure_notice"  # "your data was deleted", to the number the person had
    NUMBER_MOVED = "number_moved"  # a registration moved to a new number: to the old and the new one
    STAFF = "staff"
    CAMPAIGN = "campaign"
    CHECKIN = "checkin"  # a check-in question, or its thanks, to someone answering by SMS


class OutboundMessage(TimestampMixin, Base):
    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))  # E.164; indexed with the id, see __table_args__
    # No foreign key (nor on campaign_id): on the largest table, the per-row check was most of a fan-out's time. The
    # writers keep the reference: a fan-out selects the contact it writes in the same statement, retention deletes
    # only contacts no message names, and campaigns are never deleted (migration "fan-out and growth indexes").
    contact_id: Mapped[int | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default=MessagePriority.TRANSACTIONAL)
    language: Mapped[str] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.QUEUED)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))  # unique where set: see __table_args__
    parts: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    claim_token: Mapped[str | None] = mapped_column(String(32))  # the worker batch that holds it
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # backoff after an error
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    final_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    campaign_id: Mapped[int | None] = mapped_column()
    # The SMS route it went out on (SMS_ROUTES: `africastalking` or a Kannel route), set when a worker claims it;
    # set before that, it is the route the message must take (a keyword reply goes back the way the keyword came).
    route: Mapped[str | None] = mapped_column(String(40))

    # One message per person per campaign, whatever a restarted fan-out does; counters read this index.
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_outbound_messages_campaign_contact"),
        Index("ix_outbound_messages_campaign_status", "campaign_id", "status"),
        # The dispatcher's "next due messages" read walks this in id order and stops after one round.
        Index("ix_outbound_messages_due", "status", "priority", "id"),
        # The console's message list filtered by status or by number, newest first, reads these backwards and stops
        # after a page, however many messages the table or the number has had.
        Index("ix_outbound_messages_status_id", "status", "id"),
        Index("ix_outbound_messages_phone_id", "phone", "id"),
        # Delivery reports find their message by the provider's id. Unique where set only: the rows a fan-out writes
        # have none yet, and need not each add an entry to it.
        Index(
            "uq_outbound_messages_provider_message_id",
            "provider_message_id",
            unique=True,
            postgresql_where=text("provider_message_id IS NOT NULL"),
            sqlite_where=text("provider_message_id IS NOT NULL"),
        ),
        # Only rows a worker holds: a fan-out's new rows never enter it, and a sent row leaves it.
        Index(
            "ix_outbound_messages_claim_token",
            "claim_token",
            postgresql_where=text("claim_token IS NOT NULL"),
            sqlite_where=text("claim_token IS NOT NULL"),
        ),
        # Reports by period (a month's messages, whatever the table's age).
        Index("ix_outbound_messages_created_at", "created_at"),
        # Retention's "bodies older than N days": only final rows whose body is still there, so it empties as it goes.
        Index(
            "ix_outbound_messages_final_body",
            "final_at",
            postgresql_where=text("final_at IS NOT NULL AND body <> ''"),
            sqlite_where=text("final_at IS NOT NULL AND body <> ''"),
        ),
    )

    def __repr__(self) -> str:
        return f"<OutboundMessage id={self.id} kind={self.kind} status={self.status}>"


class DeliveryReport(Base):
    """A delivery report the provider sent for a message id we had not stored yet, kept until we have.

    Reports can overtake the worker that records the provider's answer; they are applied when the id arrives.
    """

    __tablename__ = "delivery_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(100), index=True)
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)  # retention by age


class InboundMessage(Base):
    """An SMS a person sent to the programme: keywords act at once, anything else waits in the staff inbox."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(100), unique=True)  # the provider re-sends; dedupe on this
    phone: Mapped[str] = mapped_column(String(16), index=True)
    to: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    link_id: Mapped[str | None] = mapped_column(String(100))
    network_code: Mapped[str | None] = mapped_column(String(10))
    route: Mapped[str | None] = mapped_column(String(40))  # the SMS route it came in on
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    keyword: Mapped[str | None] = mapped_column(String(16))  # stop, start or help when it was one
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(120))  # staff e-mail; keywords are handled by no one
    # The staff member who is to answer it, in the staff inbox.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)


class SystemAlert(Base):
    """Something staff must act on (out of credit, messages with an unknown outcome); shown until resolved."""

    __tablename__ = "system_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
