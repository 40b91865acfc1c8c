"""Turning a completed USSD registration into a beneficiary with a `registered` grant, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import utcnow
from models.grants import open_grant
from models.people import Beneficiary, find_beneficiary_by_phone, get_or_create_contact, national_id_taken
from models.reference import new_reference

# Attempts at a fresh random reference before giving up (a clash is one in millions).
REFERENCE_ATTEMPTS = 5


class RegistrationError(ValueError):
    pass


class AlreadyRegisteredError(RegistrationError):
    def __init__(self, beneficiary: Beneficiary):
        super().__init__("this phone number is already registered")
        self.beneficiary = beneficiary
        self.reference = beneficiary.reference  # still readable after the caller's transaction rolls back


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


def register_beneficiary(
    session: Session, phone: str, answers: RegistrationAnswers, language: str, actor: str = "ussd"
) -> Beneficiary:
    """Write the beneficiary and its `registered` grant. Consent is given by calling this at all.

    Raises `AlreadyRegisteredError` for a number that has a beneficiary and `NationalIdTakenError` for an ID that
    another beneficiary holds. The caller commits (and rolls back on error).
    """
    existing = find_beneficiary_by_phone(session, phone)
    if existing is not None:
        raise AlreadyRegisteredError(existing)
    if answers.national_id and national_id_taken(session, answers.national_id):
        raise NationalIdTakenError("national ID already registered")
    contact = get_or_create_contact(session, phone)
    contact.language = language
    for _ in range(REFERENCE_ATTEMPTS):
        beneficiary = Beneficiary(
            contact_id=contact.id,
            reference=new_reference(),
            consent_at=utcnow(),
            **answers.__dict__,
        )
        try:
            with session.begin_nested():
                session.add(beneficiary)
                session.flush()
        except IntegrityError:
            # Another session may have registered this number or ID since the checks above; else the random
            # reference clashed, and another one is drawn.
            existing = find_beneficiary_by_phone(session, phone)
            if existing is not None:
                raise AlreadyRegisteredError(existing) from None
            if answers.national_id and national_id_taken(session, answers.national_id):
                raise NationalIdTakenError("national ID already registered") from None
            continue
        open_grant(session, beneficiary.id, actor=actor)
        beneficiary.contact = contact
        return beneficiary
    raise RegistrationError("could not allocate a unique reference")
