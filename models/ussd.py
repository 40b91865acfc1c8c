"""USSD sessions as the provider reports them when they end (for delivery statistics and support), and the names
of the Redis keys a caller's USSD state lives under.

The key names are here, below both the menu (which reads and writes them on every hop, `menus.session`) and the
casework that must find a person's keys to erase them (`notifications.casework.privacy`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UtcDateTime
from models.clock import utcnow

SESSION_KEY_PREFIX = "ussd:session:"
DRAFT_KEY_PREFIX = "ussd:draft:"
LANGUAGE_KEY_PREFIX = "ussd:language:"
# Until when (Unix seconds) some check-in may be open: read with every session's first hop, so that a dial asks the
# database for the caller's check-in only while one can be open (notifications.checkins writes it).
CHECKINS_OPEN_UNTIL_KEY = "ussd:checkins_open_until"


def session_key(session_id: str) -> str:
    """One USSD session's state (per provider session id; it lives `USSD_SESSION_TTL_SECONDS`)."""
    return f"{SESSION_KEY_PREFIX}{session_id}"


def draft_key(phone: str) -> str:
    """A number's unfinished registration (it lives `REGISTRATION_DRAFT_TTL_SECONDS`)."""
    return f"{DRAFT_KEY_PREFIX}{phone}"


def language_key(phone: str) -> str:
    """A number's copy of `Contact.language`."""
    return f"{LANGUAGE_KEY_PREFIX}{phone}"


class UssdSessionRecord(Base):
    __tablename__ = "ussd_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)  # E.164
    service_code: Mapped[str | None] = mapped_column(String(40))
    network_code: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))  # Success, Incomplete, Failed
    hops_count: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)  # retention by age


def record_session_end(session: Session, *, session_id: str, phone: str, status: str, **fields) -> UssdSessionRecord:
    """Store the provider's end-of-session report; a repeated report updates the same row."""
    record = session.execute(
        select(UssdSessionRecord).where(UssdSessionRecord.session_id == session_id)
    ).scalar_one_or_none()
    if record is None:
        record = UssdSessionRecord(session_id=session_id, phone=phone, status=status)
        session.add(record)
    record.phone, record.status = phone, status
    for name, value in fields.items():
        setattr(record, name, value)
    session.flush()
    return record
