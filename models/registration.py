"""Turning a completed USSD registration into a beneficiary with a `registered` grant, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from models.clock import utcnow
from models.crypto import national_id_digest
from models.db import Executor, dialect_name, insert_on_conflict
from models.grants import open_grant
from models.people import Beneficiary, first_name_of, national_id_taken, registered_reference, save_contact_choice
from models.reference import new_reference

# Attempts at a fresh random reference before giving up (a clash is one in millions).
REFERENCE_ATTEMPTS = 5
_beneficiaries = Beneficiary.__table__


@cache
def _new_beneficiary(dialect: str):
    """Does nothing on any unique clash (number, reference, national ID): the caller tells them apart."""
    return insert_on_conflict(dialect, _beneficiaries).on_conflict_do_nothing().returning(_beneficiaries.c.id)


class RegistrationError(ValueError):
    pass


class AlreadyRegisteredError(RegistrationError):
    def __init__(self, reference: str):
        super().__init__("this phone number is already registered")
        self.reference = reference  # still readable after the caller's transaction rolls back


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
    contact_id: int
    reference: str
    first_name: str


def register_beneficiary(
    db: Executor, phone: str, answers: RegistrationAnswers, language: str, actor: str = "ussd"
) -> Registered:
    """Write the beneficiary and its `registered` grant, and store `language` on the contact. Consent is given by
    calling this at all.

    Raises `AlreadyRegisteredError` for a number that has a beneficiary and `NationalIdTakenError` for an ID that
    another beneficiary holds. The caller commits (and rolls back on error). Core statements, no savepoint: the
    beneficiary insert does nothing on a unique clash, and the clash is then told apart by looking again.
    """
    existing = registered_reference(db, phone)
    if existing is not None:
        raise AlreadyRegisteredError(existing)
    if answers.national_id and national_id_taken(db, answers.national_id):
        raise NationalIdTakenError("national ID already registered")
    contact_id = save_contact_choice(db, phone, language=language)
    now = utcnow()
    row = {"contact_id": contact_id, "consent_at": now, "created_at": now, "updated_at": now, **answers.__dict__}
    # The table's column is the ciphertext (its type encrypts the bound value); the keyed hash goes beside it.
    row["national_id_cipher"] = row.pop("national_id")
    row["national_id_hash"] = national_id_digest(answers.national_id)
    statement = _new_beneficiary(dialect_name(db))
    for _ in range(REFERENCE_ATTEMPTS):
        reference = new_reference()
        beneficiary_id = db.execute(statement, {**row, "reference": reference}).scalar_one_or_none()
        if beneficiary_id is None:
            # Another session may have registered this number or ID since the checks above; else the random
            # reference clashed, and another one is drawn.
            existing = registered_reference(db, phone)
            if existing is not None:
                raise AlreadyRegisteredError(existing)
            if answers.national_id and national_id_taken(db, answers.national_id):
                raise NationalIdTakenError("national ID already registered")
            continue
        open_grant(db, beneficiary_id, actor=actor)
        return Registered(beneficiary_id, contact_id, reference, first_name_of(answers.full_name))
    raise RegistrationError("could not allocate a unique reference")
