"""Registrations held for staff: a USSD registration whose national ID another beneficiary already holds.

Telling the caller "this ID is already registered" would let anyone with a phone find out whether a given person is
in the programme. So such a registration is kept aside instead, the caller hears that staff will be in touch, and
staff resolve it from the console's duplicate-ID review list: register it under a corrected ID, or dismiss it.
The national ID is stored as `Beneficiary.national_id` is: encrypted, with its keyed hash beside it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cache

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, validates

from models.base import Base, TimestampMixin, UtcDateTime
from models.clock import utcnow
from models.crypto import EncryptedText, national_id_digest
from models.db import Executor
from models.people import NATIONAL_ID_HASH_LENGTH, Beneficiary, Contact, registering_contact_id
from models.registration import RegistrationAnswers


class HeldStatus(StrEnum):
    HELD = "held"  # waiting for staff
    REGISTERED = "registered"  # registered by staff under a corrected ID
    DISMISSED = "dismissed"  # dropped by staff


class HeldRegistration(TimestampMixin, Base):
    __tablename__ = "held_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    language: Mapped[str] = mapped_column(String(2))
    full_name: Mapped[str] = mapped_column(String(120))
    sex: Mapped[str] = mapped_column(String(8))
    year_of_birth: Mapped[int] = mapped_column(Integer)
    district: Mapped[str] = mapped_column(String(20), index=True)
    village: Mapped[str] = mapped_column(String(120))
    returned_from: Mapped[str] = mapped_column(String(16))
    year_of_return: Mapped[int] = mapped_column(Integer)
    national_id: Mapped[str | None] = mapped_column("national_id_cipher", EncryptedText)
    # Not unique: the point of the row is that a beneficiary holds the same hash.
    national_id_hash: Mapped[str | None] = mapped_column(String(NATIONAL_ID_HASH_LENGTH), index=True)
    household_size: Mapped[int] = mapped_column(Integer)
    main_need: Mapped[str] = mapped_column(String(16))
    consent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(12), default=HeldStatus.HELD, index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(254))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"))

    contact: Mapped[Contact] = relationship(lazy="joined")

    @validates("national_id")
    def _hash_national_id(self, _key: str, national_id: str | None) -> str | None:
        self.national_id_hash = national_id_digest(national_id)
        return national_id

    @property
    def phone(self) -> str:
        return self.contact.phone

    def answers(self, national_id: str | None) -> RegistrationAnswers:
        """The answers as given, with `national_id` in place of the one that clashed."""
        return RegistrationAnswers(
            full_name=self.full_name,
            sex=self.sex,
            year_of_birth=self.year_of_birth,
            district=self.district,
            village=self.village,
            returned_from=self.returned_from,
            year_of_return=self.year_of_return,
            national_id=national_id,
            household_size=self.household_size,
            main_need=self.main_need,
        )

    def __repr__(self) -> str:
        return f"<HeldRegistration id={self.id} status={self.status}>"


_held = HeldRegistration.__table__


@cache
def _new_held():
    return _held.insert().returning(_held.c.id)


def hold_registration(db: Executor, phone: str, answers: RegistrationAnswers, language: str) -> int:
    """Keep a registration whose national ID is taken for staff (one Core insert); returns its id. The caller
    consented, so the answers may be kept; the caller commits."""
    contact_id = registering_contact_id(db, phone, language)
    now = utcnow()
    row = {
        "contact_id": contact_id,
        "language": language,
        "consent_at": now,
        "created_at": now,
        "updated_at": now,
        "status": HeldStatus.HELD,
        **answers.__dict__,
    }
    row["national_id_cipher"] = row.pop("national_id")
    row["national_id_hash"] = national_id_digest(answers.national_id)
    return db.execute(_new_held(), row).scalar_one()


def holder_of(session: Session, held: HeldRegistration) -> Beneficiary | None:
    """The beneficiary who holds the held registration's national ID (None if it has been corrected or erased)."""
    if held.national_id_hash is None:
        return None
    return session.execute(
        select(Beneficiary).where(Beneficiary.national_id_hash == held.national_id_hash)
    ).scalar_one_or_none()


def waiting_registrations(session: Session, districts: tuple[str, ...]) -> list[HeldRegistration]:
    """Held registrations waiting for staff, oldest first; only in `districts` unless it is empty (every one)."""
    statement = select(HeldRegistration).where(HeldRegistration.status == HeldStatus.HELD)
    if districts:
        statement = statement.where(HeldRegistration.district.in_(districts))
    return list(session.execute(statement.order_by(HeldRegistration.id)).scalars())
