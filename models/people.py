"""Contacts (every number the gateway knows) and beneficiaries (the returnees who registered).

A number that dials once and chooses a language becomes a contact, with its language and alerts choice, whether or
not it registers; a registration adds a beneficiary to that contact. Language and alerts are thus stored once, and
`STOP` by SMS or the USSD alerts menu works for every number.

One phone often serves a household: a contact holds up to `MAX_BENEFICIARIES_PER_PHONE` beneficiaries
(`models.registration`), each with their own reference, grant and SMS language (`Beneficiary.language`: SMS about
that person are in it). The contact's language is the menu language of whoever dials, and alerts are the phone's:
a STOP stops bulk SMS to the phone, for everyone on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, and_, bindparam, func, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship, validates

from models.base import Base, TimestampMixin, UtcDateTime
from models.clock import utcnow
from models.crypto import EncryptedText, national_id_digest
from models.db import Executor, dialect_name, insert_on_conflict


class Language(StrEnum):
    ENGLISH = "en"
    SESOTHO = "st"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"


class ReturnedFrom(StrEnum):
    SOUTH_AFRICA = "south_africa"
    OTHER = "other"


class ConsentChannel(StrEnum):
    """How the person gave consent: on their own phone, or in person to an officer (who is named beside it)."""

    USSD = "ussd"
    IN_PERSON = "in_person"


class MainNeed(StrEnum):
    BUSINESS = "business"
    FARMING = "farming"
    SKILLS = "skills"
    JOB = "job"
    OTHER = "other"


# Hex characters of an HMAC-SHA256.
NATIONAL_ID_HASH_LENGTH = 64

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
    # In registration order; a household phone holds several (MAX_BENEFICIARIES_PER_PHONE).
    beneficiaries: Mapped[list[Beneficiary]] = relationship(back_populates="contact", order_by="Beneficiary.id")

    def __repr__(self) -> str:
        return f"<Contact id={self.id} language={self.language}>"


class Beneficiary(TimestampMixin, Base):
    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Several on a household phone (MAX_BENEFICIARIES_PER_PHONE). None for a person without a phone, registered in
    # person by an officer: nothing can be sent to them, and the notices they are owed are kept as unsent
    # (models.notices).
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    sex: Mapped[str] = mapped_column(String(8))
    year_of_birth: Mapped[int] = mapped_column(Integer)
    district: Mapped[str] = mapped_column(String(20), index=True)
    village: Mapped[str] = mapped_column(String(120))
    returned_from: Mapped[str] = mapped_column(String(16))
    year_of_return: Mapped[int] = mapped_column(Integer)
    # Encrypted at rest, with its keyed hash for exact search and uniqueness (models/crypto.py); set through the
    # attribute, the hash follows (`_hash_national_id`); Core writes set both columns.
    national_id: Mapped[str | None] = mapped_column("national_id_cipher", EncryptedText)
    national_id_hash: Mapped[str | None] = mapped_column(String(NATIONAL_ID_HASH_LENGTH), unique=True)
    household_size: Mapped[int] = mapped_column(Integer)
    main_need: Mapped[str] = mapped_column(String(16))
    consent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    consent_channel: Mapped[str] = mapped_column(String(16), default=ConsentChannel.USSD)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(120))  # the officer who heard consent in person
    registered_via: Mapped[str] = mapped_column(String(8), default="ussd")  # ussd, console or api
    # The person's own language: SMS about them (grant and payment notices) are written in it, and for a person
    # without a phone the notices kept as unsent too. The phone's menu language is the contact's, chosen by whoever
    # dials. None only for rows older than household phones: the contact's then.
    own_language: Mapped[str | None] = mapped_column("language", String(2))

    contact: Mapped[Contact | None] = relationship(back_populates="beneficiaries", lazy="joined")
    grant: Mapped[Grant] = relationship(back_populates="beneficiary", uselist=False)  # noqa: F821

    @validates("national_id")
    def _hash_national_id(self, _key: str, national_id: str | None) -> str | None:
        self.national_id_hash = national_id_digest(national_id)
        return national_id

    @property
    def phone(self) -> str | None:
        """None for a person registered without a phone."""
        return self.contact.phone if self.contact is not None else None

    @property
    def language(self) -> str | None:
        """The language SMS about this person are written in: their own, else the phone's."""
        if self.own_language is not None or self.contact is None:
            return self.own_language
        return self.contact.language

    @property
    def alerts_on(self) -> bool:
        return self.contact.alerts_on if self.contact is not None else False

    @property
    def first_name(self) -> str:
        return first_name_of(self.full_name)

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


def phone_holder(contact_id, *conditions):
    """A join condition for `Beneficiary`: the first person registered with the phone `contact_id` (a column), among
    those meeting `conditions` (functions that take an alias of Beneficiary and return a condition on it).

    A household phone holds several people, while its SMS, call-backs and inbox items are the phone's: joined to
    every person they would be counted, listed or shown once per person. They go with the phone's first registration
    instead (an indexed look-up of the lowest beneficiary id of the phone).
    """
    other = aliased(Beneficiary)
    first = select(func.min(other.id)).where(other.contact_id == contact_id, *(c(other) for c in conditions))
    return and_(Beneficiary.contact_id == contact_id, Beneficiary.id == first.scalar_subquery())


def phone_holders():
    """A subquery of (`contact_id`, `holder_id`): each phone's first-registered person, in one grouped pass.

    `phone_holder` joins one row at a time, which suits a page of rows; a report or a recount over every SMS joins
    this instead, where a look-up per row would cost seconds at a million people.
    """
    return (
        select(Beneficiary.contact_id, func.min(Beneficiary.id).label("holder_id"))
        .where(Beneficiary.contact_id.is_not(None))
        .group_by(Beneficiary.contact_id)
        .subquery()
    )


def first_name_of(full_name: str) -> str:
    """How SMS and screens greet a beneficiary: the first word of the name as registered."""
    return full_name.split()[0] if full_name.split() else full_name


def find_contact(session: Session, phone: str) -> Contact | None:
    return session.execute(select(Contact).where(Contact.phone == phone)).scalar_one_or_none()


def get_or_create_contact(session: Session, phone: str) -> Contact:
    """The contact for `phone`, created on first sight; two first hops from one number at once both get it."""
    return session.get_one(Contact, contact_id(session, phone))


# The functions below are Core statements, for the USSD hop (see `Database.connection`) as much as for sessions.
_contacts = Contact.__table__
_beneficiaries = Beneficiary.__table__
_BY_PHONE = _contacts.c.phone == bindparam("phone")
_LANGUAGE = select(_contacts.c.language).where(_BY_PHONE)
_ALERTS_ON = select(_contacts.c.alerts_on).where(_BY_PHONE)
_CONTACT_ID = select(_contacts.c.id).where(_BY_PHONE)
_HOUSEHOLD = (
    select(
        _beneficiaries.c.id,
        _beneficiaries.c.reference,
        _beneficiaries.c.full_name,
        _beneficiaries.c.year_of_birth,
    )
    .join_from(_beneficiaries, _contacts)
    .where(_BY_PHONE)
    .order_by(_beneficiaries.c.id)
)
_NATIONAL_ID_TAKEN = select(_beneficiaries.c.id).where(
    _beneficiaries.c.national_id_hash == bindparam("national_id_hash")
)


@cache
def _new_contact(dialect: str):
    return (
        insert_on_conflict(dialect, _contacts)
        .on_conflict_do_nothing(index_elements=[_contacts.c.phone])
        .returning(_contacts.c.id)
    )


@cache
def _contact_choice(dialect: str, names: tuple[str, ...]):
    statement = insert_on_conflict(dialect, _contacts)
    changes = {name: statement.excluded[name] for name in (*names, "updated_at")}
    return statement.on_conflict_do_update(index_elements=[_contacts.c.phone], set_=changes).returning(_contacts.c.id)


@cache
def _registering_contact(dialect: str):
    statement = insert_on_conflict(dialect, _contacts)
    changes = {
        "language": func.coalesce(_contacts.c.language, statement.excluded.language),
        "updated_at": statement.excluded.updated_at,
    }
    return statement.on_conflict_do_update(index_elements=[_contacts.c.phone], set_=changes).returning(_contacts.c.id)


def registering_contact_id(db: Executor, phone: str, language: str) -> int:
    """The contact a registration on `phone` belongs to, created on first sight with `language`; returns its id.

    A contact that has a language keeps it: that is the menu language of whoever dials the phone, and the person
    being registered (perhaps another member of the household) gets their own SMS language on their row. On
    PostgreSQL the upsert also locks the contact's row until the commit, so two registrations on one phone at once
    take turns at the per-phone limit.
    """
    now = utcnow()
    statement = _registering_contact(dialect_name(db))
    return db.execute(
        statement, {"phone": phone, "language": language, "created_at": now, "updated_at": now}
    ).scalar_one()


def contact_language(db: Executor, phone: str) -> str | None:
    """The number's chosen language; None when it has not chosen one, or the gateway has never seen it."""
    return db.execute(_LANGUAGE, {"phone": phone}).scalar_one_or_none()


def contact_alerts_on(db: Executor, phone: str) -> bool:
    """Whether the number gets bulk SMS; a number never seen has not said no."""
    alerts_on = db.execute(_ALERTS_ON, {"phone": phone}).scalar_one_or_none()
    return True if alerts_on is None else alerts_on


def contact_id(db: Executor, phone: str) -> int:
    """The id of the contact for `phone`, created on first sight.

    No savepoint: an insert that meets the same number written by a concurrent first hop does nothing, and the
    second look finds the other one's row.
    """
    found = db.execute(_CONTACT_ID, {"phone": phone}).scalar_one_or_none()
    if found is not None:
        return found
    now = utcnow()
    created = db.execute(
        _new_contact(dialect_name(db)), {"phone": phone, "created_at": now, "updated_at": now}
    ).scalar_one_or_none()
    if created is not None:
        return created
    return db.execute(_CONTACT_ID, {"phone": phone}).scalar_one()


def save_contact_choice(db: Executor, phone: str, **choice) -> int:
    """Store `language=` and/or `alerts_on=` for `phone`, creating the contact on first sight; returns its id.

    One upsert, so that two hops of the same number at once cannot both try to create it.
    """
    now = utcnow()
    statement = _contact_choice(dialect_name(db), tuple(sorted(choice)))
    return db.execute(statement, {"phone": phone, "created_at": now, "updated_at": now, **choice}).scalar_one()


@dataclass(frozen=True)
class Member:
    """One person registered on a phone, as the registration's household checks need them."""

    id: int
    reference: str
    full_name: str
    year_of_birth: int


def household_members(db: Executor, phone: str) -> list[Member]:
    """Everyone registered with `phone`, in registration order (several on a shared household phone)."""
    return [Member(*row) for row in db.execute(_HOUSEHOLD, {"phone": phone})]


def registered_reference(db: Executor, phone: str) -> str | None:
    """The reference of the first beneficiary registered with `phone`, if any: whether the number is registered."""
    members = household_members(db, phone)
    return members[0].reference if members else None


def find_beneficiary_by_phone(session: Session, phone: str) -> Beneficiary | None:
    """The first beneficiary registered with `phone` (a household phone holds more: `find_beneficiaries_by_phone`)."""
    found = find_beneficiaries_by_phone(session, phone)
    return found[0] if found else None


def find_beneficiaries_by_phone(session: Session, phone: str) -> list[Beneficiary]:
    """Everyone registered with `phone`, in registration order."""
    return list(
        session.execute(
            select(Beneficiary).join(Beneficiary.contact).where(Contact.phone == phone).order_by(Beneficiary.id)
        ).scalars()
    )


def same_person(member: Member, full_name: str, year_of_birth: int) -> bool:
    """Whether a new registration on a phone is someone already on it: the same name (case and spaces aside) and
    year of birth. A household rarely has two members of one name born the same year; a re-sent or repeated
    registration always does."""
    return member.year_of_birth == year_of_birth and _name_key(member.full_name) == _name_key(full_name)


def _name_key(full_name: str) -> str:
    return " ".join(full_name.lower().split())


def find_beneficiary_by_reference(session: Session, reference: str) -> Beneficiary | None:
    return session.execute(select(Beneficiary).where(Beneficiary.reference == reference)).scalar_one_or_none()


def national_id_taken(db: Executor, national_id: str) -> bool:
    """Whether another beneficiary holds `national_id`, asked of its keyed hash (the column itself is encrypted)."""
    return db.execute(_NATIONAL_ID_TAKEN, {"national_id_hash": national_id_digest(national_id)}).first() is not None
