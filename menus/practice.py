"""The practice phone: staff dial the USSD menu from the console, to rehearse with returnees at the district office
and to try a menu text before it goes live.

The console draws the phone; the hops go through the same USSD handling as the provider's, so what staff see is
what a feature phone gets, and the SMS a session causes are real outbox rows. In production a practice session may
only use a number in TEST_NUMBERS: from any other number an officer could register, opt out or ask for a call-back
in a real returnee's name. Every session is a staff action, audited with the number it used.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from models.actors import Actor
from models.messages import OutboundMessage
from models.phone import PhoneNumberError, normalize_phone
from models.staff import Role

# The number a practice session uses in development and tests when staff type none and TEST_NUMBERS is empty: a
# Vodacom Lesotho number kept for demonstrations (set TEST_NUMBERS to the programme's own test SIMs in production).
PRACTICE_NUMBER = "+26659999999"
# Session ids of practice sessions start with this, so that support can tell them from the provider's in the
# USSD session records.
SESSION_PREFIX = "PHONE-"
SESSION_ID_BYTES = 12
# The network code the provider sends for a number (MCC 651 Lesotho: 01 Vodacom, 02 Econet); the USSD handling
# only records it, so a South African SIM gets Vodacom's, as a roaming one would.
VODACOM_LESOTHO = "65101"
ECONET_LESOTHO = "65102"
NETWORK_BY_PREFIX = (("+2666", ECONET_LESOTHO),)
# SMS the phone's inbox shows, newest first: a registration and a few grant notices fit.
INBOX_SIZE = 10
AUDIT_ACTION = "phone.session"


class PracticeNumberError(ValueError):
    """The number cannot be used by the practice phone; the message says why, for the officer."""


@dataclass(frozen=True)
class PracticeSession:
    """One practice dial: the provider-style session id, the caller's number and its network code."""

    session_id: str
    phone: str
    network_code: str


def default_number(settings: Settings) -> str:
    """The number the page offers: the first test number, else (outside production) the practice number."""
    if settings.test_numbers:
        return settings.test_numbers[0]
    return "" if settings.is_production else PRACTICE_NUMBER


def allowed_number(settings: Settings, raw: str) -> str:
    """The number in E.164 if the practice phone may use it; raises `PracticeNumberError` otherwise.

    In production only the numbers in TEST_NUMBERS; elsewhere any number the USSD handling serves.
    """
    try:
        phone = normalize_phone(raw or "")
    except PhoneNumberError as exc:
        raise PracticeNumberError(f"{raw or 'an empty number'} cannot be used: {exc}") from None
    if settings.is_production and phone not in {_normal(number) for number in settings.test_numbers}:
        if not settings.test_numbers:
            raise PracticeNumberError("In production the practice phone needs TEST_NUMBERS, and none are set.")
        raise PracticeNumberError(
            f"{phone} is not a test number. In production the practice phone only dials from TEST_NUMBERS: "
            + ", ".join(settings.test_numbers)
        )
    return phone


def _normal(number: str) -> str:
    try:
        return normalize_phone(number)
    except PhoneNumberError:
        return number


def network_code(phone: str) -> str:
    return next((code for prefix, code in NETWORK_BY_PREFIX if phone.startswith(prefix)), VODACOM_LESOTHO)


def start_practice_session(session: Session, actor: Actor, settings: Settings, raw_number: str) -> PracticeSession:
    """Begin a practice dial for an officer or admin: checks the role and the number, and audits the session."""
    actor.require_role(Role.OFFICER)
    phone = allowed_number(settings, raw_number)
    practice = PracticeSession(
        session_id=SESSION_PREFIX + secrets.token_hex(SESSION_ID_BYTES), phone=phone, network_code=network_code(phone)
    )
    actor.audit(session, AUDIT_ACTION, "phone", None, phone=phone, ussd_session=practice.session_id)
    return practice


def messages_to(session: Session, phone: str, limit: int = INBOX_SIZE) -> list[OutboundMessage]:
    """The SMS the gateway queued or sent to `phone`, newest first: the practice phone's inbox."""
    statement = select(OutboundMessage).where(OutboundMessage.phone == phone).order_by(OutboundMessage.id.desc())
    return list(session.execute(statement.limit(limit)).scalars())
