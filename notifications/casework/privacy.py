"""One person's data, given back (export) or let go (erasure) at their request, with the programme's figures intact.

Both are staff actions for admins, audited through the `Actor`. Erasure lives at the notifications level because it
cancels the SMS still owed to the person. The export's format is described in docs/data-protection.md.

Erasure overwrites, rather than deletes, the rows that reports count: the beneficiary keeps district, sex, an age
band, its registration day and its grant (status, amounts); messages keep kind, status and dates. Everything that
points at the person goes: name, village, national ID (cipher and hash), the phone number (replaced by a tombstone
that no caller can have, so that the number is a stranger if it dials again), free text in feedback and inbound SMS,
SMS bodies, payment references and the reasons staff wrote on the grant's events, and the person's USSD state in
Redis. The audit entry keeps the reference, who, when and why.

A phone shared by a household holds several people, and what belongs to the phone (SMS it sent, call-backs,
feedback, USSD sessions) cannot be told apart by person. So on a shared phone the export gives the person's own
record and the SMS that name them (each carries their reference), and leaves out the phone's other data, which is
the household's; the erasure takes the person and the SMS that name them off the phone (to a tombstone contact of
their own) and leaves the phone, its history and its USSD state to the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import and_, delete, false, or_, select, true, update
from sqlalchemy.orm import Session

from models.actors import Actor
from models.audit import AuditLog
from models.base import utcnow
from models.checkins import Checkin, CheckinAnswer, CheckinInvitation, CheckinQuestion
from models.corrections import ERASED, PERSONAL_ACTIONS, erased_details
from models.grants import Grant, GrantEvent
from models.held import HeldRegistration
from models.messages import DeliveryReport, InboundMessage, MessageStatus, OutboundMessage
from models.notices import UnsentNotice
from models.people import Beneficiary, Contact, find_beneficiary_by_reference
from models.reports import AGE_BANDS, LESOTHO
from models.requests import CallbackRequest, Feedback
from models.staff import Role
from models.ussd import UssdSessionRecord, draft_key, language_key, session_key
from notifications.checkins.report import answer_label

# The format name and version written into every export; a change of shape gets a new version.
EXPORT_FORMAT = "returnee-gateway/person-export/2"  # 2: consent_channel, unsent_notices, checkins
# The phone of an erased contact: no E.164 number looks like it, so no caller can ever match it again.
ERASED_PHONE_PREFIX = "erased-"
# Registration time of day an erasure keeps: noon in Lesotho, so that the day (and its UTC year) stays the same.
ERASED_REGISTRATION_TIME = time(12, 0)


class PrivacyError(ValueError):
    """The person cannot be exported or erased (unknown reference, outside the actor's districts, already erased)."""


@dataclass(frozen=True)
class Erasure:
    """What an erasure did, for the operator (no personal data)."""

    reference: str
    messages_cancelled: int
    messages_cleared: int
    redis_keys_deleted: int


def _find(session: Session, actor: Actor, reference: str) -> Beneficiary:
    actor.require_role(Role.ADMIN)
    beneficiary = find_beneficiary_by_reference(session, reference.strip())
    # Outside the actor's districts looks like no such reference, as everywhere in the console.
    if beneficiary is None or not actor.can_see_district(beneficiary.district):
        raise PrivacyError(f"no beneficiary with reference {reference.strip()}")
    return beneficiary


def is_erased(beneficiary: Beneficiary) -> bool:
    """Erasure tombstones the phone; a person registered without one is known erased by the name it leaves."""
    if beneficiary.contact is None:
        return beneficiary.full_name == ERASED
    return beneficiary.contact.phone.startswith(ERASED_PHONE_PREFIX)


def _is_shared(contact: Contact | None) -> bool:
    """Whether others are registered with the person's phone (a household phone); never for a person without one."""
    return contact is not None and len(contact.beneficiaries) > 1


def _messages_of(beneficiary: Beneficiary, shared: bool):
    """The SMS that are the person's: all of the phone's when they are alone on it, else those that name them
    (confirmations, grant and payment notices and number moves all carry the reference); none for a person
    registered without a phone (a comparison with a missing id would read `IS NULL` and match others' rows)."""
    contact = beneficiary.contact
    if contact is None:
        return false()
    phone_messages = or_(OutboundMessage.contact_id == contact.id, OutboundMessage.phone == contact.phone)
    if not shared:
        return phone_messages
    return and_(phone_messages, OutboundMessage.body.contains(beneficiary.reference, autoescape=True))


# --- export --------------------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _rows(session: Session, statement, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{name: _json(getattr(row, name)) for name in names} for row in session.execute(statement).scalars()]


def export_person(session: Session, actor: Actor, reference: str) -> dict[str, Any]:
    """Everything the gateway holds about the person with `reference`, as one JSON-ready document; audited.

    Staff names (who handled a request, who moved the grant) are the staff's own data and are left out.
    """
    beneficiary = _find(session, actor, reference)
    contact = beneficiary.contact
    grant = session.execute(select(Grant).where(Grant.beneficiary_id == beneficiary.id)).scalar_one_or_none()
    phone = beneficiary.phone
    shared = _is_shared(contact)
    mine = _messages_of(beneficiary, shared)
    # The phone's own data, when the person is alone on it; nothing of it without a phone, or on a shared one.
    phone_only = true() if contact is not None and not shared else false()
    document = {
        "format": EXPORT_FORMAT,
        "exported_at": _json(utcnow()),
        "reference": beneficiary.reference,
        "profile": {
            "full_name": beneficiary.full_name,
            "phone": phone,
            "national_id": beneficiary.national_id,
            "sex": beneficiary.sex,
            "year_of_birth": beneficiary.year_of_birth,
            "district": beneficiary.district,
            "village": beneficiary.village,
            "returned_from": beneficiary.returned_from,
            "year_of_return": beneficiary.year_of_return,
            "household_size": beneficiary.household_size,
            "main_need": beneficiary.main_need,
            "language": beneficiary.language,
            "alerts_on": beneficiary.alerts_on,
            # Others registered with the same (household) phone; their data and the phone's are not in this export.
            "others_on_phone": len(contact.beneficiaries) - 1 if contact is not None else 0,
            "registered_via": beneficiary.registered_via,
            "registered_at": _json(beneficiary.created_at),
            "consent_at": _json(beneficiary.consent_at),
            "consent_channel": beneficiary.consent_channel,
            "erased": is_erased(beneficiary),
        },
        "grant": None,
        "sms": _rows(
            session,
            select(OutboundMessage).where(mine).order_by(OutboundMessage.id),
            ("created_at", "kind", "language", "body", "status", "parts", "failure_reason", "submitted_at", "final_at"),
        ),
        "ussd_sessions": _rows(
            session,
            select(UssdSessionRecord)
            .where(phone_only, UssdSessionRecord.phone == phone)
            .order_by(UssdSessionRecord.id),
            ("session_id", "status", "network_code", "hops_count", "duration_ms", "ended_at", "recorded_at"),
        ),
        "callbacks": _rows(
            session,
            select(CallbackRequest)
            .where(phone_only, CallbackRequest.contact_id == beneficiary.contact_id)
            .order_by(CallbackRequest.id),
            ("topic", "created_at", "handled_at"),
        ),
        "feedback": _rows(
            session,
            select(Feedback).where(phone_only, Feedback.contact_id == beneficiary.contact_id).order_by(Feedback.id),
            ("text", "created_at", "handled_at"),
        ),
        "inbound_sms": _rows(
            session,
            select(InboundMessage)
            .where(
                phone_only,
                or_(InboundMessage.contact_id == beneficiary.contact_id, InboundMessage.phone == phone),
            )
            .order_by(InboundMessage.id),
            ("text", "keyword", "sent_at", "received_at", "handled_at"),
        ),
        "unsent_notices": _rows(
            session,
            select(UnsentNotice).where(UnsentNotice.beneficiary_id == beneficiary.id).order_by(UnsentNotice.id),
            ("created_at", "kind", "language", "body", "reason"),
        ),
    }
    document["checkins"] = _checkins(session, beneficiary)
    if grant is not None:
        events = select(GrantEvent).where(GrantEvent.grant_id == grant.id).order_by(GrantEvent.id)
        document["grant"] = {
            "status": grant.status,
            "amount": _json(grant.amount),
            "payment_channel": grant.payment_channel,
            "payment_reference": grant.payment_reference,
            "opened_at": _json(grant.created_at),
            "events": _rows(session, events, ("from_status", "to_status", "reason", "created_at")),
        }
    actor.audit(session, "data.export", "beneficiary", beneficiary.reference)
    return document


def _checkins(session: Session, beneficiary: Beneficiary) -> list[dict[str, Any]]:
    """Each check-in the person was asked to, with what they answered (as staff read the answers)."""
    invitations = session.execute(
        select(CheckinInvitation, Checkin)
        .join(Checkin, Checkin.id == CheckinInvitation.checkin_id)
        .where(CheckinInvitation.beneficiary_id == beneficiary.id)
        .order_by(CheckinInvitation.id)
    ).all()
    shown = []
    for invitation, checkin in invitations:
        answers = session.execute(
            select(CheckinAnswer, CheckinQuestion)
            .join(CheckinQuestion, CheckinQuestion.id == CheckinAnswer.question_id)
            .where(CheckinAnswer.invitation_id == invitation.id)
            .order_by(CheckinQuestion.position)
        ).all()
        shown.append(
            {
                "title": checkin.title_en,
                "status": invitation.status,
                "invited_at": _json(invitation.invited_at),
                "finished_at": _json(invitation.finished_at),
                "answers": [
                    {
                        "question": question.text_en,
                        "answer": answer_label(question, answer.value),
                        "channel": answer.channel,
                        "answered_at": _json(answer.answered_at),
                    }
                    for answer, question in answers
                ],
            }
        )
    return shown


# --- erasure -------------------------------------------------------------------------------------------------------


def _erased_registration(created_at: datetime, year_of_birth: int) -> tuple[datetime, int]:
    """The registration moment and birth year an erasure keeps: the same Lesotho day and age band, nothing finer.

    Reports count registrations per Lesotho day and ages at registration by band (models/reports.py), so the day
    and the band are kept exactly; the time of day and the birth year within the band go.
    """
    day = created_at.astimezone(LESOTHO).date()
    kept = datetime.combine(day, ERASED_REGISTRATION_TIME, tzinfo=LESOTHO).astimezone(UTC)
    age = created_at.astimezone(UTC).year - year_of_birth
    for _, lowest, highest in AGE_BANDS:
        if (lowest is None or age >= lowest) and (highest is None or age <= highest):
            representative = lowest if lowest is not None else highest
            return kept, kept.year - representative
    return kept, year_of_birth  # unreachable: the bands cover every age


def _scrub_audit(session: Session, reference: str, secrets: list[str | None]) -> None:
    """Take the person's identifiers out of audit details written before (exports by name, earlier changes).

    Corrections and number moves of the person also held values the person no longer has (an old name, an old
    number): those go by the entry's shape (`models.corrections.erased_details`), not by search.
    """
    changes = select(AuditLog).where(
        AuditLog.object_type == "beneficiary", AuditLog.object_id == reference, AuditLog.action.in_(PERSONAL_ACTIONS)
    )
    for entry in session.execute(changes).scalars():
        entry.details = json.dumps(
            erased_details(entry.action, entry.details_dict), default=str, sort_keys=True, ensure_ascii=False
        )
    secrets = [secret for secret in secrets if secret]
    found = session.execute(
        select(AuditLog).where(or_(*(AuditLog.details.contains(secret, autoescape=True) for secret in secrets)))
    ).scalars()
    for entry in found:
        for secret in secrets:
            entry.details = entry.details.replace(secret, ERASED)


def erase_person(session: Session, redis_client: redis.Redis, actor: Actor, reference: str, reason: str) -> Erasure:
    """Erase the person with `reference` for `reason`, keeping what the reports count; audited.

    The caller commits. The person's Redis keys (USSD sessions, registration draft, language copy) are deleted
    here, before the commit: they are copies and working state, so losing them to a rolled-back erasure costs
    nothing. A USSD session whose end the provider has not reported yet is not known by id; it expires within
    `USSD_SESSION_TTL_SECONDS`.
    """
    reason = (reason or "").strip()
    if not reason:
        raise PrivacyError("an erasure needs a reason")
    beneficiary = _find(session, actor, reference)
    if is_erased(beneficiary):
        raise PrivacyError(f"reference {beneficiary.reference} is already erased")
    if _is_shared(beneficiary.contact):
        return _erase_from_shared_phone(session, actor, beneficiary, reason)
    contact = beneficiary.contact
    phone, now = beneficiary.phone, utcnow()
    secrets = [phone, beneficiary.national_id, beneficiary.full_name]
    _erase_record(session, beneficiary)
    cancelled = cleared = deleted = 0
    if contact is not None:
        cancelled, cleared, deleted = _erase_contact(session, redis_client, contact, now)
    _scrub_audit(session, beneficiary.reference, secrets)
    actor.audit(session, "data.erase", "beneficiary", beneficiary.reference, reason=reason)
    session.flush()
    return Erasure(beneficiary.reference, cancelled, cleared, deleted)


def _erase_contact(
    session: Session, redis_client: redis.Redis, contact: Contact, now: datetime
) -> tuple[int, int, int]:
    """Everything of the person's phone: the number (tombstoned), SMS both ways, feedback, held registrations, USSD
    sessions and Redis state. Returns the messages cancelled and cleared, and the Redis keys deleted."""
    phone = contact.phone
    tombstone = f"{ERASED_PHONE_PREFIX}{contact.id}"
    session_ids = list(
        session.execute(select(UssdSessionRecord.session_id).where(UssdSessionRecord.phone == phone)).scalars()
    )
    contact.phone, contact.alerts_on = tombstone, False
    mine = or_(OutboundMessage.contact_id == contact.id, OutboundMessage.phone == phone)
    cancelled = session.execute(
        update(OutboundMessage)
        .where(mine, OutboundMessage.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED, final_at=now, next_attempt_at=None)
    ).rowcount
    cleared = session.execute(
        update(OutboundMessage).where(mine).values(phone=tombstone, body="", last_error=None)
    ).rowcount
    session.execute(update(DeliveryReport).where(DeliveryReport.phone == phone).values(phone=None))
    session.execute(
        update(InboundMessage)
        .where(or_(InboundMessage.contact_id == contact.id, InboundMessage.phone == phone))
        .values(phone=tombstone, text="", link_id=None)
    )
    session.execute(update(Feedback).where(Feedback.contact_id == contact.id).values(text=""))
    # Registrations held for staff review from this phone carry a name, a village and an ID: they go with it.
    session.execute(delete(HeldRegistration).where(HeldRegistration.contact_id == contact.id))
    session.execute(
        update(UssdSessionRecord).where(UssdSessionRecord.phone == phone).values(phone=tombstone, error_message=None)
    )
    keys = [draft_key(phone), language_key(phone), *(session_key(session_id) for session_id in session_ids)]
    return cancelled, cleared, redis_client.delete(*keys)


def _erase_record(session: Session, beneficiary: Beneficiary) -> None:
    """The person's own row and grant: identifiers go, what the reports count stays."""
    registered_at, year_of_birth = _erased_registration(beneficiary.created_at, beneficiary.year_of_birth)
    beneficiary.full_name = beneficiary.village = ERASED
    beneficiary.national_id = None  # the hash goes with it
    beneficiary.year_of_birth = year_of_birth
    beneficiary.created_at = beneficiary.consent_at = registered_at
    grant = session.execute(select(Grant).where(Grant.beneficiary_id == beneficiary.id)).scalar_one_or_none()
    if grant is not None:
        grant.payment_reference = None
        session.execute(update(GrantEvent).where(GrantEvent.grant_id == grant.id).values(reason=None))
    # Notices kept for a person without a phone name them: the bodies go, kind and dates stay.
    session.execute(update(UnsentNotice).where(UnsentNotice.beneficiary_id == beneficiary.id).values(body=""))


def _erase_from_shared_phone(session: Session, actor: Actor, beneficiary: Beneficiary, reason: str) -> Erasure:
    """Erase one person of a household phone: their record, and the SMS that name them, leave the phone for a
    tombstone contact of their own; the phone, its other SMS, call-backs, feedback and USSD state stay with the
    others (they are the household's, and cannot be told apart by person)."""
    now = utcnow()
    mine = _messages_of(beneficiary, shared=True)
    secrets = [beneficiary.national_id, beneficiary.full_name]
    own = Contact(phone=f"{ERASED_PHONE_PREFIX}b{beneficiary.id}", language=beneficiary.language)  # until its id
    own.alerts_on = False
    session.add(own)
    session.flush()
    own.phone = tombstone = f"{ERASED_PHONE_PREFIX}{own.id}"
    cancelled = session.execute(
        update(OutboundMessage)
        .where(mine, OutboundMessage.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED, final_at=now, next_attempt_at=None)
    ).rowcount
    cleared = session.execute(
        update(OutboundMessage).where(mine).values(contact_id=own.id, phone=tombstone, body="", last_error=None)
    ).rowcount
    _erase_record(session, beneficiary)
    beneficiary.contact = own
    _scrub_audit(session, beneficiary.reference, secrets)
    actor.audit(session, "data.erase", "beneficiary", beneficiary.reference, reason=reason, shared_phone=True)
    session.flush()
    return Erasure(beneficiary.reference, cancelled, cleared, 0)
