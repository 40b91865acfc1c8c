"""Registering a person: the one registration every interface calls, whoever registers.

A returnee registers themselves on USSD (`menus.actions.submit_registration`); an officer registers a walk-in at the
district office in the console or through the API; an officer registers a registration held for its national ID
(`notifications.casework.duplicates`). All of them call `register_beneficiary_for`, which checks the actor (an
officer, within their districts; viewers cannot register), applies the same duplicate rules (a phone holds up to
MAX_BENEFICIARIES_PER_PHONE people of one household, each of them once; a national ID once), writes the beneficiary
with how consent was given and who heard it, owes the confirmation SMS and writes the `beneficiary.register` audit
entry, all in the caller's transaction.

A walk-in's phone is optional. With no phone, nothing is ever sent: the confirmation, and every grant notice later,
is kept as an unsent notice (`models.notices`) that the officer sees on the person's page; the per-phone limit does
not apply. A walk-in with a phone that already holds others of the household joins them, like a second
registration on USSD.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from models.actors import Actor, PermissionDeniedError, Via
from models.answers import AnswersError, parse_staff_answers
from models.db import Executor
from models.messages import MessageKind, MessagePriority
from models.people import ConsentChannel, Language
from models.phone import PhoneNumberError, mask_phone, normalize_phone
from models.registration import DEFAULT_MAX_PER_PHONE, Consent, RegistrationAnswers, register_beneficiary
from models.staff import Role
from models.ussd import language_key
from notifications.sms.outbox import Recipient, record_owed_message, record_unsendable_notice
from notifications.sms.queues import kick

log = logging.getLogger(__name__)

REGISTER_ACTION = "beneficiary.register"
# The fields of a walk-in beyond the registration answers (models.answers.FIELDS), in the order of the form.
WALK_IN_EXTRA_FIELDS = ("language", "phone", "consent")
# What staff are told about a duplicate, by the field it is about. Unlike the USSD caller, who is told nothing about
# somebody else's ID, an officer may know that an ID is taken: they can search for it in their districts anyway.
ALREADY_REGISTERED = (
    "this person (same name and year of birth) is already registered with this number: search for it in the"
    " beneficiaries"
)
HOUSEHOLD_FULL = "this number already has {limit} people registered, the most one phone may hold"
NATIONAL_ID_TAKEN = "another beneficiary holds this national ID (the duplicate review resolves such cases)"
CONSENT_REQUIRED = "the person must agree that the programme keeps their details; nothing is stored otherwise"


@dataclass(frozen=True)
class WalkIn:
    """A walk-in registration as an officer gave it, checked: the answers, the phone (None: no phone) and the
    language of the person's SMS."""

    answers: RegistrationAnswers
    phone: str | None
    language: str


@dataclass(frozen=True)
class Registration:
    """What the interfaces need of a new registration."""

    beneficiary_id: int
    reference: str
    first_name: str
    phone: str | None
    confirmation_id: int | None  # the confirmation SMS owed; None without a phone
    unsent_notice_id: int | None  # the confirmation kept unsent, for a person without a phone


def parse_walk_in(raw: Mapping[str, Any]) -> WalkIn:
    """Check a walk-in as a form or JSON gives it (text values; `consent` must be True), field by field.

    Raises `AnswersError` with a reason for every refused field at once, so that the form shows each beside its
    field. The answers are checked by the rules the USSD form uses (`models.answers`).
    """
    errors: dict[str, str] = {}
    answers = None
    try:
        answers = parse_staff_answers(raw)
    except AnswersError as exc:
        errors.update(exc.errors)
    language = " ".join(str(raw.get("language") or "").split()).lower()
    if language not in set(Language):
        errors["language"] = f"one of: {', '.join(Language)}"
    phone = None
    text = " ".join(str(raw.get("phone") or "").split())
    if text:
        try:
            phone = normalize_phone(text)
        except PhoneNumberError as exc:
            errors["phone"] = str(exc)
    if raw.get("consent") is not True:
        errors["consent"] = CONSENT_REQUIRED
    if errors:
        raise AnswersError(errors)
    assert answers is not None  # no errors: every answer was read
    return WalkIn(answers, phone, language)


def register_beneficiary_for(
    db: Executor,
    actor: Actor,
    answers: RegistrationAnswers,
    *,
    phone: str | None,
    language: str,
    consent: ConsentChannel,
    max_per_phone: int = DEFAULT_MAX_PER_PHONE,
) -> Registration:
    """Register the person for `actor`: the beneficiary, its `registered` grant, the confirmation owed (an SMS, or
    an unsent notice without a phone) and the audit entry, in the caller's transaction. Does not commit.

    `consent` says how the person agreed: on USSD (their own phone, or a held registration they made there), or in
    person to the actor, who is recorded beside it. Needs the officer role and, for a district-limited officer, one
    of their districts (`PermissionDeniedError`); the returnee on their own phone registers anywhere. Raises
    `models.registration.AlreadyRegisteredError` for a person already registered with the phone,
    `HouseholdFullError` for a phone that holds `max_per_phone` people (the deployment's
    MAX_BENEFICIARIES_PER_PHONE, which every caller passes) and `NationalIdTakenError` for an ID another beneficiary
    holds; nothing is written then.
    """
    actor.require_role(Role.OFFICER)
    if not actor.can_see_district(answers.district):
        raise PermissionDeniedError(f"{answers.district} is not one of your districts")
    in_person = consent == ConsentChannel.IN_PERSON
    registered = register_beneficiary(
        db,
        phone,
        answers,
        language,
        actor=actor.name,
        consent=Consent(
            channel=consent,
            recorded_by=actor.name if in_person else None,
            registered_via=str(actor.via) if in_person else str(Via.USSD),
        ),
        max_per_phone=max_per_phone,
    )
    confirmation_id = unsent_id = None
    params = {"first_name": registered.first_name, "reference": registered.reference}
    if phone is not None:
        recipient = Recipient(phone, registered.contact_id, language)
        confirmation_id = record_owed_message(db, recipient, MessageKind.REGISTRATION_CONFIRMATION, **params)
    else:
        unsent_id = record_unsendable_notice(
            db, registered.beneficiary_id, MessageKind.REGISTRATION_CONFIRMATION, language=language, **params
        )
    actor.audit(
        db,
        REGISTER_ACTION,
        "beneficiary",
        registered.reference,
        district=answers.district,
        consent=str(consent),
        has_phone=phone is not None,
    )
    return Registration(
        registered.beneficiary_id,
        registered.reference,
        registered.first_name,
        phone,
        confirmation_id,
        unsent_id,
    )


def after_registration(redis_client: redis.Redis, registration: Registration) -> None:
    """After the commit of a staff registration: send the confirmation, and drop the number's USSD language copy,
    which the registration may have changed (`models.ussd.language_key`)."""
    if registration.phone is None:
        return
    try:
        redis_client.delete(language_key(registration.phone))
    except redis.RedisError:
        # The copy then shows the menu in the number's former language until it expires; nothing is lost.
        log.warning("could not drop the language copy of %s", mask_phone(registration.phone))
    kick(redis_client, MessagePriority.TRANSACTIONAL)
