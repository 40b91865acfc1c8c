"""A feature phone that dials the engine the way Africa's Talking does, and a few ways to set the scene."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from menus import UssdEngine, UssdRequest, UssdResponse
from models.grants import move_grant
from models.people import Beneficiary, find_beneficiary_by_phone, get_or_create_contact
from models.registration import RegistrationAnswers, register_beneficiary

PHONE = "+26658000001"
OTHER_PHONE = "+26662000002"
_session_numbers = itertools.count(1)


class Phone:
    """One caller. `dial()` opens a new provider session; `send()` answers the current screen.

    By default the text is cumulative (`1*2*Thabo`), as Africa's Talking sends it; `cumulative=False` plays a gateway
    that sends only the latest answer.
    """

    def __init__(self, engine: UssdEngine, number: str = PHONE, cumulative: bool = True):
        self.engine = engine
        self.number = number
        self.cumulative = cumulative
        self.session_id = ""
        self.text = ""
        self.response: UssdResponse | None = None

    def dial(self) -> str:
        self.session_id = f"ATUid_test_{next(_session_numbers)}"
        self.text = ""
        return self._hop()

    def send(self, answer: str) -> str:
        if self.cumulative:
            self.text = f"{self.text}*{answer}" if self.text else answer
        else:
            self.text = answer
        return self._hop()

    def resend(self) -> str:
        """The gateway sends the last hop again (it did not get our answer in time)."""
        return self._hop()

    def walk(self, *answers: str) -> str:
        body = ""
        for answer in answers:
            body = self.send(answer)
        return body

    def _hop(self) -> str:
        self.response = self.engine.handle(
            UssdRequest(
                session_id=self.session_id,
                phone=self.number,
                service_code="*123#",
                network_code="65101",
                text=self.text,
            )
        )
        return self.response.body


# Answers that fill the whole registration form, in order, then consent.
GOOD_ANSWERS = ("Thabo Mokoena", "2", "1985", "5", "Ha Abia", "1", "2020", "ls12345", "5", "2", "1")


@pytest.fixture
def engine(settings, db, redis) -> UssdEngine:
    return UssdEngine(settings=settings, database=db, redis=redis)


@pytest.fixture
def phone(engine) -> Phone:
    return Phone(engine)


def set_language(db, number: str, language: str | None) -> None:
    with db.session() as session:
        get_or_create_contact(session, number).language = language


@pytest.fixture
def english(db) -> None:
    """The caller chose English on an earlier dial."""
    set_language(db, PHONE, "en")


@pytest.fixture
def sesotho(db) -> None:
    set_language(db, PHONE, "st")


def register(
    db,
    number: str = PHONE,
    *,
    national_id: str | None = None,
    name: str = "Palesa Mohapi",
    language: str = "en",
    year_of_birth: int = 1990,
    max_per_phone: int = 4,
) -> str:
    """A beneficiary registered earlier; returns the reference."""
    answers = RegistrationAnswers(
        full_name=name,
        sex="female",
        year_of_birth=year_of_birth,
        district="Leribe",
        village="Hlotse",
        returned_from="south_africa",
        year_of_return=2020,
        national_id=national_id,
        household_size=4,
        main_need="farming",
    )
    with db.session() as session:
        return register_beneficiary(session, number, answers, language, max_per_phone=max_per_phone).reference


def move(db, number: str, *steps: str, amount: str | None = None, channel: str | None = None) -> None:
    with db.session() as session:
        beneficiary: Beneficiary = find_beneficiary_by_phone(session, number)
        for step in steps:
            move_grant(
                session,
                beneficiary.grant,
                step,
                actor="test",
                reason="test",
                amount=Decimal(amount) if amount and step == "approved" else None,
                channel=channel if step == "payment_scheduled" else None,
            )
