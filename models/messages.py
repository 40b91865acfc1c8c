"""Outbound SMS: every message the gateway owes someone is a row, written before anything is sent.

The row is the source of truth: a message that is in the table will reach the provider, whatever happens to Redis
or a worker in between (see notifications/ for the sending side).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    SENT = "sent"
    BUFFERED = "buffered"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


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
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<OutboundMessage id={self.id} kind={self.kind} status={self.status}>"
