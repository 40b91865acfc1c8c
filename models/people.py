"""Contacts (every number the gateway knows) and beneficiaries (the returnees who registered).

A number that dials once and chooses a language becomes a contact, with its language and alerts choice, whether or
not it registers; a registration adds a beneficiary to that contact. Language and alerts are thus stored once, and
`STOP` by SMS or the USSD alerts menu works for every number.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base, TimestampMixin, UtcDateTime


class Language(StrEnum):
    ENGLISH = "en"
    SESOTHO = "st"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"


class ReturnedFrom(StrEnum):
    SOUTH_AFRICA = "south_africa"
    OTHER = "other"


class MainNeed(StrEnum):
    BUSINESS = "business"
    FARMING = "farming"
    SKILLS = "skills"
    JOB = "job"
    OTHER = "other"


# The ten districts in alphabetical order: USSD option N is DISTRICTS[N - 1]. Posters print these numbers.
DISTRICTS = (
    "Berea",
    "Butha-Buthe",
    "Leribe",
    "Mafeteng",
    "Maseru",
    "Mohale's Hoek",
    "Mokhotlong",
    "Qacha's Nek",
    "Quthing",
    "Thaba-Tseka",
)


class Contact(TimestampMixin, Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)  # E.164
    language: Mapped[str | None] = mapped_column(String(2))  # None until the number chooses
    alerts_on: Mapped[bool] = mapped_column(Boolean, default=True)
    beneficiary: Mapped[Beneficiary | None] = relationship(back_populates="contact")

    def __repr__(self) -> str:
        return f"<Contact id={self.id} language={self.language}>"


class Beneficiary(TimestampMixin, Base):
    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    sex: Mapped[str] = mapped_column(String(8))
    year_of_birth: Mapped[int] = mapped_column(Integer)
    district: Mapped[str] = mapped_column(String(20), index=True)
    village: Mapped[str] = mapped_column(String(120))
    returned_from: Mapped[str] = mapped_column(String(16))
    year_of_return: Mapped[int] = mapped_column(Integer)
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    household_size: Mapped[int] = mapped_column(Integer)
    main_need: Mapped[str] = mapped_column(String(16))
    consent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_via: Mapped[str] = mapped_column(String(8), default="ussd")

    contact: Mapped[Contact] = relationship(back_populates="beneficiary", lazy="joined")
    grant: Mapped[Grant] = relationship(back_populates="beneficiary", uselist=False)  # noqa: F821

    @property
    def phone(self) -> str:
        return self.contact.phone

    @property
    def language(self) -> str | None:
        return self.contact.language

    @property
    def alerts_on(self) -> bool:
        return self.contact.alerts_on

    @property
    def first_name(self) -> str:
        return self.full_name.split()[0] if self.full_name.split() else self.full_name

    def __repr__(self) -> str:
        return f"<Beneficiary id={self.id} reference={self.reference}>"


# The name search of models/search.py (`lower(full_name) LIKE '%moko%'`) through trigrams, so that a name that
# matches nobody does not read every name. PostgreSQL only (pg_trgm, migration "trigram index on beneficiary
# names"); SQLite has no such index and reads the names.
Index(
    "ix_beneficiaries_full_name_trgm",
    func.lower(Beneficiary.full_name).label("full_name_lower"),
    postgresql_using="gin",
    postgresql_ops={"full_name_lower": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")


def find_contact(session: Session, phone: str) -> Contact | None:
    return session.execute(select(Contact).where(Contact.phone == phone)).scalar_one_or_none()


def get_or_create_contact(session: Session, phone: str) -> Contact:
    """The contact for `phone`, created on first sight; two first hops from one number at once both get it."""
    contact = find_contact(session, phone)
    if contact is not None:
        return contact
    try:
        with session.begin_nested():
            contact = Contact(phone=phone)
            session.add(contact)
            session.flush()
    except IntegrityError:
        contact = find_contact(session, phone)
        if contact is None:
            raise
    return contact


def find_beneficiary_by_phone(session: Session, phone: str) -> Beneficiary | None:
    return session.execute(
        select(Beneficiary).join(Beneficiary.contact).where(Contact.phone == phone)
    ).scalar_one_or_none()


def find_beneficiary_by_reference(session: Session, reference: str) -> Beneficiary | None:
    return session.execute(select(Beneficiary).where(Beneficiary.reference == reference)).scalar_one_or_none()


def national_id_taken(session: Session, national_id: str) -> bool:
    return session.execute(select(Beneficiary.id).where(Beneficiary.national_id == national_id)).first() is not None
