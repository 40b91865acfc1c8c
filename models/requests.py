"""What returnees ask of the programme from the USSD menu: call-backs and problem reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, bindparam, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, UtcDateTime
from models.db import Executor


class CallbackRequest(TimestampMixin, Base):
    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    topic: Mapped[str] = mapped_column(String(20))  # what the call is about, from the USSD menu
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(120))
    # The staff member who is to call back, in the staff inbox.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)


class Feedback(TimestampMixin, Base):
    """A problem a returnee reported, in their own words (up to one USSD answer)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(120))
    # The staff member who is to follow the report up, in the staff inbox.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)


_ADD_CALLBACK = insert(CallbackRequest.__table__)
_ADD_FEEDBACK = insert(Feedback.__table__)


def add_callback_request(db: Executor, contact_id: int, topic: str) -> None:
    db.execute(_ADD_CALLBACK, {"contact_id": contact_id, "topic": topic})


_OPEN_CALLBACKS = (
    select(func.count())
    .select_from(CallbackRequest)
    .where(CallbackRequest.contact_id == bindparam("contact_id"), CallbackRequest.handled_at.is_(None))
)


def count_open_callbacks(db: Executor, contact_id: int) -> int:
    """Call-back requests of this contact that staff have not handled yet."""
    return db.execute(_OPEN_CALLBACKS, {"contact_id": contact_id}).scalar_one()


def add_feedback(db: Executor, contact_id: int, text: str) -> None:
    db.execute(_ADD_FEEDBACK, {"contact_id": contact_id, "text": text})
