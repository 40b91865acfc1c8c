"""Builders for test data through the real domain functions (no rows written behind the rules' back)."""

from __future__ import annotations

import itertools

from models.people import DISTRICTS, Language, MainNeed, ReturnedFrom, Sex
from models.registration import RegistrationAnswers, register_beneficiary
from models.staff import create_staff

_numbers = itertools.count(1)


def next_phone() -> str:
    """A fresh valid Vodacom Lesotho number per call."""
    return f"+266580{next(_numbers):05d}"


def answers(**changes) -> RegistrationAnswers:
    values = {
        "full_name": "Palesa Mokoena",
        "sex": Sex.FEMALE,
        "year_of_birth": 1988,
        "district": DISTRICTS[4],
        "village": "Ha Thetsane",
        "returned_from": ReturnedFrom.SOUTH_AFRICA,
        "year_of_return": 2020,
        "national_id": None,
        "household_size": 4,
        "main_need": MainNeed.BUSINESS,
    }
    values.update(changes)
    return RegistrationAnswers(**values)


def register(db, phone: str | None = None, language: str = Language.ENGLISH, **changes):
    """Register a beneficiary and return (reference, phone)."""
    phone = phone or next_phone()
    with db.session() as session:
        beneficiary = register_beneficiary(session, phone, answers(**changes), language)
        return beneficiary.reference, phone


STAFF_PASSWORD = "correct horse battery"


def make_staff(db, email: str, role: str = "officer", password: str = STAFF_PASSWORD, districts=None, active=True):
    """A staff account through `create_staff`; returns its id."""
    with db.session() as session:
        user = create_staff(session, email, role, password, districts)
        user.active = active
        return user.id


# The shortest secrets production accepts (config.settings), for tests that build a production app.
PRODUCTION_SECRETS = {"secret_key": "s" * 32, "webhook_token": "t" * 32}
