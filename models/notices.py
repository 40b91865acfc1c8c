"""Notices a person is owed but cannot receive: they were registered without a phone.

A walk-in registered by an officer may have no phone. Their grant moves as anyone's does, and every SMS it would
have sent them (the confirmation, approved, paid, ...) is written here instead of into `outbound_messages`: the
text as it would have read, in their language, never given to a provider. The officer sees them on the person's
page and tells the person at the next visit. Keeping them out of the outbox keeps the dispatcher, its counters and
the SMS reports about SMS only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UtcDateTime
from models.clock import utcnow
from models.db import Executor

# Unsent notices shown on a person's page, newest first.
UNSENT_NOTICES_SHOWN = 50


class UnsentReason(StrEnum):
    NO_PHONE = "no_phone"  # the person was registered without a phone number


class UnsentNotice(Base):
    __tablename__ = "unsent_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # a models.messages.MessageKind
    language: Mapped[str] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(Text)  # emptied when the person is erased
    reason: Mapped[str] = mapped_column(String(16), default=UnsentReason.NO_PHONE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<UnsentNotice id={self.id} kind={self.kind}>"


_RECORD = insert(UnsentNotice.__table__).returning(UnsentNotice.__table__.c.id)


def record_unsent_notice(
    db: Executor, beneficiary_id: int, kind: str, language: str, body: str, reason: UnsentReason
) -> int:
    """Keep a notice that cannot be sent, in the caller's transaction (a connection or a session); returns its id."""
    row = {"beneficiary_id": beneficiary_id, "kind": kind, "language": language, "body": body, "reason": reason}
    return db.execute(_RECORD, {**row, "created_at": utcnow()}).scalar_one()


def unsent_notices(session: Session, beneficiary_id: int, limit: int = UNSENT_NOTICES_SHOWN) -> list[UnsentNotice]:
    """The person's unsent notices, newest first."""
    statement = (
        select(UnsentNotice)
        .where(UnsentNotice.beneficiary_id == beneficiary_id)
        .order_by(UnsentNotice.id.desc())
        .limit(limit)
    )
    return list(session.execute(statement).scalars())
