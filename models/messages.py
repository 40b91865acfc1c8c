"""Outbound SMS: every message the gateway owes someone is a row, written before anything is sent.

The row is the source of truth: a message that is in the table will reach the provider, whatever happens to Redis
or a worker in between (see notifications/ for the sending side).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, UtcDateTime, utcnow


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


# Statuses no delivery report may change: the message's fate is known.
FINAL_MESSAGE_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.REJECTED,
        MessageStatus.EXPIRED,
        MessageStatus.CANCELLED,
    }
)
# Statuses of a message the provider has accepted: it must never be submitted again.
ACCEPTED_MESSAGE_STATUSES = frozenset(
    {MessageStatus.SUBMITTED, MessageStatus.SENT, MessageStatus.BUFFERED, MessageStatus.DELIVERED}
)


class MessagePriority(StrEnum):
    TRANSACTIONAL = "transactional"  # confirmations, grant and payment notices: sent first, never held
    BULK = "bulk"  # campaigns: after transactional, never at night


class MessageKind(StrEnum):
    REGISTRATION_CONFIRMATION = "registration_confirmation"
    GRANT_NOTICE = "grant_notice"
    COVID_TIPS = "covid_tips"
    KEYWORD_REPLY = "keyword_reply"
    STAFF = "staff"
    CAMPAIGN = "campaign"


class OutboundMessage(TimestampMixin, Base):
    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)  # E.164
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default=MessagePriority.TRANSACTIONAL)
    language: Mapped[str] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.QUEUED, index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    parts: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    claim_token: Mapped[str | None] = mapped_column(String(32), index=True)  # the worker batch that holds it
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # backoff after an error
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    final_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))

    # One message per person per campaign, whatever a restarted fan-out does; counters read this index.
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_outbound_messages_campaign_contact"),
        Index("ix_outbound_messages_campaign_status", "campaign_id", "status"),
        # The dispatcher's "next due messages" read walks this in id order and stops after one round.
        Index("ix_outbound_messages_due", "status", "priority", "id"),
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
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


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
