"""Builders for test data through the real domain functions (no rows written behind the rules' back)."""

from __future__ import annotations

import itertools

from models.actors import Actor, Via
from models.people import DISTRICTS, Language, MainNeed, ReturnedFrom, Sex
from models.registration import RegistrationAnswers, register_beneficiary
from models.staff import create_staff, find_staff

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
# STAFF_PASSWORD as the gateway hashed passwords before it used werkzeug (`scrypt$n$r$p$<salt>$<key>`), copied from a
# database of that time: such hashes must keep logging in.
LEGACY_STAFF_PASSWORD_HASH = "scrypt$16384$8$1$qhExDOz2AeeRo1qw/Ms4eQ==$UQmV4buVCL+fdcTy7/kqRZmLLXCrQ5/Jqec+YlYLW64="


def make_staff(db, email: str, role: str = "officer", password: str = STAFF_PASSWORD, districts=None, active=True):
    """A staff account through `create_staff`; returns its id."""
    with db.session() as session:
        user = create_staff(session, email, role, password, districts)
        user.active = active
        return user.id


def staff_actor(session, email: str, via: Via = Via.CONSOLE, ip: str | None = None) -> Actor:
    """The actor of the account `email` in `session`, as a console request (or `via`) builds it."""
    return Actor.for_staff(find_staff(session, email), via, ip=ip)


# An operator at the server's terminal: full authority, named `cli:tester` in the audit log.
OPERATOR = Actor.operator("tester")
# The shortest secrets production accepts (config.settings), and data keys of its own (not the development ones),
# for tests that build a production app.
PRODUCTION_SECRETS = {
    "secret_key": "s" * 32,
    "webhook_token": "t" * 32,
    "data_encryption_key": "KtWMA1lBqfjvv8Deqv51Cx1_6HrOCWgI93n-hYBH_Js=",
    "data_hash_key": "rU3hUvleQ2zGC5slb2WJbT-0rS5db5Z3-AeqMXkHU0Q=",
}
