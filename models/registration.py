"""Turning a completed registration into a beneficiary with a `registered` grant, in one transaction.

This is the write; `notifications.casework.registration.register_beneficiary_for` is the one registration every
interface calls (USSD, the console, the API, a held registration resolved by staff), with the actor's checks, the
audit entry and the confirmation it owes. A phone may hold up to `MAX_BENEFICIARIES_PER_PHONE` people (a household
sharing one feature phone): the limit, and the rule that the same person is not registered twice on one phone, live
here, so that every way of registering applies them. A person registered without a phone has no such check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from config.settings import Settings
from models.clock import utcnow
from models.crypto import national_id_digest
from models.db import Executor, dialect_name, insert_on_conflict
from models.grants import open_grant
from models.people import (
    Beneficiary,
    ConsentChannel,
    first_name_of,
    household_members,
    national_id_taken,
    registering_contact_id,
    same_person,
)
from models.reference import new_reference

# Attempts at a fresh random reference before giving up (a clash is one in millions).
REFERENCE_ATTEMPTS = 5
# People one phone may hold when the caller does not pass the deployment's MAX_BENEFICIARIES_PER_PHONE.
DEFAULT_MAX_PER_PHONE = Settings.max_beneficiaries_per_phone
_beneficiaries = Beneficiary.__table__


@cache
def _new_beneficiary(dialect: str):
    """Does nothing on any unique clash (number, reference, national ID): the caller tells them apart."""
    return insert_on_conflict(dialect, _beneficiaries).on_conflict_do_nothing().returning(_beneficiaries.c.id)


class RegistrationError(ValueError):
    pass


class AlreadyRegisteredError(RegistrationError):
    """This person is already registered on this phone (same name and year of birth)."""

    def __init__(self, reference: str):
        super().__init__("this person is already registered with this phone number")
        self.reference = reference  # still readable after the caller's transaction rolls back


class HouseholdFullError(RegistrationError):
    """The phone already holds MAX_BENEFICIARIES_PER_PHONE people."""

    def __init__(self, limit: int):
        super().__init__(f"this phone number already has {limit} people registered, the most one phone may hold")
        self.limit = limit


class NationalIdTakenError(RegistrationError):
    pass


@dataclass(frozen=True)
class RegistrationAnswers:
    full_name: str
    sex: str
    year_of_birth: int
    district: str
    village: str
    returned_from: str
    year_of_return: int
    national_id: str | None
    household_size: int
    main_need: str


@dataclass(frozen=True)
class Registered:
    """What the caller needs of a new registration: the END screen and the confirmation SMS."""

    beneficiary_id: int
    contact_id: int | None  # None: registered without a phone
    reference: str
    first_name: str


@dataclass(frozen=True)
class Consent:
    """How the person agreed: on their phone (USSD), or in person to the officer named in `recorded_by`; and the
    interface the registration came through (`registered_via`: ussd, console, api)."""

    channel: ConsentChannel = ConsentChannel.USSD
    recorded_by: str | None = None
    registered_via: str = "ussd"


def register_beneficiary(
    db: Executor,
    phone: str | None,
    answers: RegistrationAnswers,
    language: str,
    actor: str = "ussd",
    consent: Consent = Consent(),  # noqa: B008  (frozen, so one shared default is safe)
    *,
    max_per_phone: int = DEFAULT_MAX_PER_PHONE,
) -> Registered:
    """Write the beneficiary and its `registered` grant; `language` is the person's own language, that of SMS about
    them (and the phone's menu language if it has none yet). `phone` None registers a person without a phone.
    Consent is given by calling this at all; `consent` says how.

    Raises `HouseholdFullError` when the phone already holds `max_per_phone` people, `AlreadyRegisteredError` when
    this person (same name and year of birth) is already on it, and `NationalIdTakenError` for an ID that another
    beneficiary holds. The caller commits (and rolls back on error). Core statements, no savepoint: the beneficiary
    insert does nothing on a unique clash, and the clash is then told apart by looking again. The contact upsert
    comes first: on PostgreSQL it locks the phone's row, so that two registrations on one phone at once cannot
    both pass the limit (SQLite takes writers one at a time anyway).
    """
    contact_id = None
    if phone is not None:
        contact_id = registering_contact_id(db, phone, language)
        _check_household(db, phone, answers, max_per_phone)
    if answers.national_id and national_id_taken(db, answers.national_id):
        raise NationalIdTakenError("national ID already registered")
    now = utcnow()
    row = {
        "contact_id": contact_id,
        "language": language,
        "consent_at": now,
        "consent_channel": consent.channel,
        "consent_recorded_by": consent.recorded_by,
        "registered_via": consent.registered_via,
        "created_at": now,
        "updated_at": now,
        **answers.__dict__,
    }
    # The table's column is the ciphertext (its type encrypts the bound value); the keyed hash goes beside it.
    row["national_id_cipher"] = row.pop("national_id")
    row["national_id_hash"] = national_id_digest(answers.national_id)
    statement = _new_beneficiary(dialect_name(db))
    for _ in range(REFERENCE_ATTEMPTS):
        reference = new_reference()
        beneficiary_id = db.execute(statement, {**row, "reference": reference}).scalar_one_or_none()
        if beneficiary_id is None:
            # Another session may have registered this ID since the check above; else the random reference
            # clashed, and another one is drawn.
            if answers.national_id and national_id_taken(db, answers.national_id):
                raise NationalIdTakenError("national ID already registered")
            continue
        open_grant(db, beneficiary_id, actor=actor)
        return Registered(beneficiary_id, contact_id, reference, first_name_of(answers.full_name))
    raise RegistrationError("could not allocate a unique reference")


def _check_household(db: Executor, phone: str, answers: RegistrationAnswers, max_per_phone: int) -> None:
    """Refuse a second registration of one person on the phone, then a phone that is full."""
    members = household_members(db, phone)
    for member in members:
        if same_person(member, answers.full_name, answers.year_of_birth):
            raise AlreadyRegisteredError(member.reference)
    if len(members) >= max_per_phone:
        raise HouseholdFullError(max_per_phone)
