"""What returnees ask of the programme from the USSD menu or by SMS: call-backs, problem reports, and erasure of
their data (which staff confirm: a shared or lost phone must not be enough to erase someone)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, bindparam, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, UtcDateTime
from models.db import Executor
from models.people import Beneficiary, Contact


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


class ErasureChannel(StrEnum):
    """How the person asked for their data to be deleted."""

    USSD = "ussd"
    SMS = "sms"


class ErasureDecision(StrEnum):
    CONFIRMED = "confirmed"  # the person was erased (`notifications.casework.privacy.erase_person`)
    DECLINED = "declined"  # staff could not confirm it was the person; `decision_reason` says why


class ErasureAsked(StrEnum):
    """What asking for erasure did; the USSD and SMS answers are named after it."""

    REQUESTED = "requested"
    ALREADY_OPEN = "already_open"
    NOT_REGISTERED = "not_registered"


class ErasureRequest(TimestampMixin, Base):
    """A person's request, by phone, that their data be deleted: open until an admin confirms or declines it.

    It points at the contact (which keeps its id, not its number, after an erasure) and at the beneficiary the
    number held when asked, so that a later move of the registration to another number cannot redirect it.
    """

    __tablename__ = "erasure_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decision: Mapped[str | None] = mapped_column(String(12))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<ErasureRequest id={self.id} {self.channel} {self.decision or 'open'}>"


_REGISTERED = (
    select(Contact.id, Beneficiary.id)
    .join_from(Contact, Beneficiary, Beneficiary.contact_id == Contact.id)
    .where(Contact.phone == bindparam("phone"))
    .order_by(Beneficiary.id)
)
_OPEN_ERASURE = select(ErasureRequest.id).where(
    ErasureRequest.beneficiary_id == bindparam("beneficiary_id"), ErasureRequest.decided_at.is_(None)
)
_ADD_ERASURE = insert(ErasureRequest.__table__)


def ask_for_erasure(db: Executor, phone: str, channel: ErasureChannel) -> ErasureAsked:
    """Record that the person registered with `phone` asks to be erased; one open request per person is enough.

    On a household phone the gateway cannot tell which of its people asked (USSD and SMS know only the number):
    each of them without an open request gets one, and the officer who calls back to confirm asks who it is and
    declines the others. Two requests written at the same instant are harmless: confirming one closes every open
    request of the person.
    """
    found = db.execute(_REGISTERED, {"phone": phone}).all()
    if not found:
        return ErasureAsked.NOT_REGISTERED
    asked = ErasureAsked.ALREADY_OPEN
    for contact_id, beneficiary_id in found:
        if db.execute(_OPEN_ERASURE, {"beneficiary_id": beneficiary_id}).first() is not None:
            continue
        db.execute(_ADD_ERASURE, {"contact_id": contact_id, "beneficiary_id": beneficiary_id, "channel": channel})
        asked = ErasureAsked.REQUESTED
    return asked
