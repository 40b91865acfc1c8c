"""Staff corrections of a beneficiary's answers, and the move of a registration to a returnee's new number.

Every corrected field is checked by the form's own question (`menus.registration.QUESTIONS`, built on the rules of
`models.answers`: the same parser, the same choices, the same cross-checks through `invalidates`), so a correction
can never store what registration would refuse; the reasons are the USSD form's English wording.

Both are officer actions through the `Actor`, with district limits on the old and the new district, and write one
audit entry with the old and new values (`models.corrections` says which are personal and how the audit view masks
them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from menus.registration import QUESTIONS_BY_FIELD, InvalidAnswer, Question
from menus.texts import menu_catalogue
from models.actors import Actor
from models.corrections import CORRECTABLE_FIELDS, CORRECTION_ACTION, NUMBER_MOVE_ACTION, audit_value
from models.crypto import national_id_digest
from models.messages import InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import Beneficiary, Contact, Language, find_beneficiary_by_reference, find_contact
from models.phone import PhoneNumberError, normalize_phone
from models.requests import CallbackRequest, ErasureRequest, Feedback
from models.staff import Role
from models.ussd import draft_key, language_key
from notifications.casework.privacy import is_erased
from notifications.sms.outbox import Recipient, owe_message


class CorrectionError(ValueError):
    """The correction cannot be made; the message says why, for the officer."""


class CorrectionNotFoundError(CorrectionError):
    """No such reference in the actor's districts (or the person was erased)."""


class IdentityCheck(StrEnum):
    """How the officer made sure the person asking for a number move is the returnee; written in the audit entry."""

    REFERENCE_AND_NATIONAL_ID = "reference_and_national_id"  # the caller gave both, and the ID matched
    IN_PERSON = "in_person"  # the officer saw the person and their documents


@dataclass(frozen=True)
class Correction:
    reference: str
    changed: tuple[str, ...]  # the fields that changed; empty when every value was already the same


@dataclass(frozen=True)
class NumberMove:
    reference: str
    notices: tuple[OutboundMessage, ...]  # to the old and the new number; the caller kicks the queue after commit


def _find(session: Session, actor: Actor, reference: str) -> Beneficiary:
    actor.require_role(Role.OFFICER)
    beneficiary = find_beneficiary_by_reference(session, (reference or "").strip())
    if beneficiary is None or not actor.can_see_district(beneficiary.district) or is_erased(beneficiary):
        raise CorrectionNotFoundError(f"no beneficiary with reference {(reference or '').strip()} in your districts")
    return beneficiary


def _reason(question: Question, exc: InvalidAnswer) -> str:
    return f"{question.field}: {menu_catalogue().get(exc.reason, Language.ENGLISH, **exc.params)}"


def _parse(question: Question, text: Any, answers: Mapping[str, Any]) -> Any:
    """The value the form would store for `text`; a choice is given by its value (`female`, `Berea`), not number."""
    text = " ".join(str(text if text is not None else "").split())
    if question.field == "national_id" and not text:
        return None  # the question is optional: an empty ID removes it
    if question.choices:
        for choice in question.choices:
            if str(choice.value).casefold() == text.casefold():
                return str(choice.value)
        raise CorrectionError(f"{question.field}: one of {', '.join(str(c.value) for c in question.choices)}")
    assert question.parse is not None  # a question without choices has a parser (menus.registration)
    try:
        return question.parse(text, answers)
    except InvalidAnswer as exc:
        raise CorrectionError(_reason(question, exc)) from None


def correct_beneficiary(session: Session, actor: Actor, reference: str, changes: Mapping[str, Any]) -> Correction:
    """Correct some of `CORRECTABLE_FIELDS` of the beneficiary `reference`; audited with old and new values.

    Values are text, as a form or JSON gives them. A field the change makes questionable is checked again (a new
    year of birth against the year of return). The new district must be one of the actor's. The caller commits.
    """
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise CorrectionError(f"these cannot be corrected here: {', '.join(unknown)}")
    beneficiary = _find(session, actor, reference)
    current = {name: getattr(beneficiary, name) for name in QUESTIONS_BY_FIELD}
    answers = dict(current)
    for name, text in changes.items():
        answers[name] = _parse(QUESTIONS_BY_FIELD[name], text, answers)
    for name in changes:
        for dependent in QUESTIONS_BY_FIELD[name].invalidates:
            if dependent not in changes:
                _parse(QUESTIONS_BY_FIELD[dependent], current[dependent], answers)
    changed = tuple(name for name in CORRECTABLE_FIELDS if name in changes and answers[name] != current[name])
    if not changed:
        return Correction(beneficiary.reference, ())
    if "district" in changed and not actor.can_see_district(answers["district"]):
        raise CorrectionError(f"district: {answers['district']} is not one of your districts")
    if "national_id" in changed and answers["national_id"]:
        holder = session.execute(
            select(Beneficiary.id).where(Beneficiary.national_id_hash == national_id_digest(answers["national_id"]))
        ).scalar_one_or_none()
        if holder is not None and holder != beneficiary.id:
            raise CorrectionError("national_id: another beneficiary holds this national ID")
    for name in changed:
        setattr(beneficiary, name, answers[name])
    details = {
        name: {"old": audit_value(name, current[name]), "new": audit_value(name, answers[name])} for name in changed
    }
    actor.audit(session, CORRECTION_ACTION, "beneficiary", beneficiary.reference, changes=details)
    session.flush()
    return Correction(beneficiary.reference, changed)


def move_to_new_number(
    session: Session,
    redis_client: redis.Redis,
    actor: Actor,
    reference: str,
    new_phone: str,
    check: IdentityCheck | str,
    national_id: str | None = None,
) -> NumberMove:
    """Move the registration `reference` to `new_phone` (a returnee with a new SIM); audited, both numbers told.

    With `REFERENCE_AND_NATIONAL_ID` the officer types the ID the caller gave, and it must match the one on record
    (a person registered without an ID is seen in person). The old number loses access at once: its contact moves
    with the registration, so the next dial from it is a stranger's, and its Redis draft and language copy go. A
    contact the new number had (it dialled once, or texted) is folded into the registration's. SMS still queued
    go to the new number. The caller commits, then kicks the transactional queue.

    On a household phone only this person moves, to a number of their own: the others keep the old number, with
    its history, queued SMS and alerts choice. A number where someone is registered is refused either way.
    """
    try:
        check = IdentityCheck(check)
    except ValueError:
        raise CorrectionError(f"check: one of {', '.join(IdentityCheck)}") from None
    beneficiary = _find(session, actor, reference)
    if check == IdentityCheck.REFERENCE_AND_NATIONAL_ID:
        given = " ".join((national_id or "").split()).upper()
        if beneficiary.national_id is None:
            raise CorrectionError("this beneficiary has no national ID on record: see them in person")
        if not given or national_id_digest(given) != beneficiary.national_id_hash:
            raise CorrectionError("the national ID given does not match the one on record")
    try:
        new_phone = normalize_phone(new_phone or "")
    except PhoneNumberError as exc:
        raise CorrectionError(f"new phone: {exc}") from None
    contact = beneficiary.contact
    if contact is None:
        return _give_first_number(session, redis_client, actor, beneficiary, new_phone, check)
    old_phone = contact.phone
    if new_phone == old_phone:
        raise CorrectionError("the new number is the number on record")
    other = find_contact(session, new_phone)
    if other is not None and other.beneficiaries:
        # A typo in the new number must not hand a person's notices to a stranger's phone.
        registered = ", ".join(person.reference for person in other.beneficiaries)
        raise CorrectionError(f"{new_phone} is the number of another registration ({registered})")
    if len(contact.beneficiaries) == 1:
        _move_the_phone(session, contact, other, new_phone)
        new_contact = contact
    else:
        new_contact = _move_the_person(session, beneficiary, other, new_phone)
    language = beneficiary.language
    notices = (
        owe_message(
            session, Recipient(old_phone, None, language), MessageKind.NUMBER_MOVED, text_key="number_moved.old"
        ),
        owe_message(
            session,
            new_contact,
            MessageKind.NUMBER_MOVED,
            text_key="number_moved.new",
            language=language,
            first_name=beneficiary.first_name,
            reference=beneficiary.reference,
        ),
    )
    actor.audit(
        session,
        NUMBER_MOVE_ACTION,
        "beneficiary",
        beneficiary.reference,
        check=str(check),
        old_phone=old_phone,
        new_phone=new_phone,
    )
    session.flush()
    # Copies and working state: losing them to a rolled-back move costs one database read on the next dial.
    redis_client.delete(draft_key(old_phone), language_key(old_phone), draft_key(new_phone), language_key(new_phone))
    return NumberMove(beneficiary.reference, notices)


def _give_first_number(
    session: Session,
    redis_client: redis.Redis,
    actor: Actor,
    beneficiary: Beneficiary,
    new_phone: str,
    check: IdentityCheck,
) -> NumberMove:
    """A person registered without a phone now has one: the number's contact (created, or the one it has from a
    dial) becomes theirs, with the language the officer recorded, and from now on their notices are sent."""
    contact = find_contact(session, new_phone)
    if contact is not None and contact.beneficiaries:
        registered = ", ".join(person.reference for person in contact.beneficiaries)
        raise CorrectionError(f"{new_phone} is the number of another registration ({registered})")
    if contact is None:
        contact = Contact(phone=new_phone, alerts_on=True)
        session.add(contact)
    contact.language = beneficiary.own_language or contact.language
    beneficiary.contact = contact
    session.flush()
    notice = owe_message(
        session,
        contact,
        MessageKind.NUMBER_MOVED,
        text_key="number_moved.new",
        language=beneficiary.language,
        first_name=beneficiary.first_name,
        reference=beneficiary.reference,
    )
    actor.audit(
        session,
        NUMBER_MOVE_ACTION,
        "beneficiary",
        beneficiary.reference,
        check=str(check),
        old_phone=None,
        new_phone=new_phone,
    )
    session.flush()
    redis_client.delete(draft_key(new_phone), language_key(new_phone))
    return NumberMove(beneficiary.reference, (notice,))


def _move_the_phone(session: Session, contact: Contact, other: Contact | None, new_phone: str) -> None:
    """The person is alone on the number: the contact moves with them (history, alerts), folding in a contact the
    new number had without anyone registered (it dialled once, or texted)."""
    if other is not None:
        _fold_in(session, contact, other)
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.contact_id == contact.id, OutboundMessage.status == MessageStatus.QUEUED)
        .values(phone=new_phone)
        .execution_options(synchronize_session=False)
    )
    contact.phone = new_phone
    session.flush()


def _move_the_person(session: Session, beneficiary: Beneficiary, other: Contact | None, new_phone: str) -> Contact:
    """The person leaves a household phone for a number of their own: only their registration changes number. A
    contact the new number had (nobody registered with it) becomes theirs, with its history and alerts choice."""
    if other is None:
        other = Contact(phone=new_phone, language=beneficiary.language, alerts_on=True)
        session.add(other)
        session.flush()
    beneficiary.contact = other
    session.flush()
    return other


def _fold_in(session: Session, contact: Contact, other: Contact) -> None:
    """Fold `other` (a number nobody is registered with) into `contact`."""
    for table in (OutboundMessage, InboundMessage, CallbackRequest, Feedback, ErasureRequest):
        session.execute(
            update(table)
            .where(table.contact_id == other.id)
            .values(contact_id=contact.id)
            .execution_options(synchronize_session=False)
        )
    if not other.alerts_on:
        contact.alerts_on = False  # a STOP sent from the new number stands
    session.delete(other)
    session.flush()
