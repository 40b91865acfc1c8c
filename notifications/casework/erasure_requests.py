"""Requests, by USSD or SMS, that a person's data be deleted: an admin confirms (the person is erased and told by
SMS) or declines (with the reason), because a shared or lost phone must not be enough to erase someone.

The "your data was deleted" SMS is owed in the erasure's own transaction, after `erase_person` has run: erasure
cancels and blanks every message of the person, and this one must survive it. It goes to the number the person had,
which is therefore kept on that one message until it is final; retention then takes the number off it
(`notifications.casework.retention`) and, as for every SMS, the body after `RETENTION_SMS_BODY_DAYS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.actors import Actor
from models.clock import utcnow
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary
from models.requests import ErasureDecision, ErasureRequest
from models.staff import Role
from notifications.casework.privacy import erase_person
from notifications.sms.outbox import Recipient, owe_message

# The longest reason staff may give for declining a request.
MAX_DECLINE_REASON_LENGTH = 500


class ErasureRequestError(ValueError):
    """The request cannot be decided (unknown, already decided, no reason to decline)."""


@dataclass(frozen=True)
class OpenErasureRequest:
    """One line of the admins' list."""

    id: int
    reference: str
    district: str
    channel: str
    asked_at: object


def open_erasure_requests(session: Session, actor: Actor) -> list[OpenErasureRequest]:
    """Requests no one has decided yet, oldest first; admins only."""
    actor.require_role(Role.ADMIN)
    rows = session.execute(
        select(ErasureRequest, Beneficiary)
        .join(Beneficiary, Beneficiary.id == ErasureRequest.beneficiary_id)
        .where(ErasureRequest.decided_at.is_(None))
        .order_by(ErasureRequest.id)
    ).all()
    return [
        OpenErasureRequest(request.id, beneficiary.reference, beneficiary.district, request.channel, request.created_at)
        for request, beneficiary in rows
        if actor.can_see_district(beneficiary.district)
    ]


def _open_request(session: Session, actor: Actor, request_id: int) -> tuple[ErasureRequest, Beneficiary]:
    actor.require_role(Role.ADMIN)
    request = session.get(ErasureRequest, request_id, with_for_update=True)
    if request is None:
        raise ErasureRequestError(f"no erasure request {request_id}")
    if request.decided_at is not None:
        raise ErasureRequestError(f"erasure request {request_id} was already {request.decision}")
    return request, session.get_one(Beneficiary, request.beneficiary_id)


def _close(session: Session, actor: Actor, beneficiary_id: int, decision: ErasureDecision, reason: str) -> None:
    """Close every open request of the person (two asked at once are one request)."""
    session.execute(
        update(ErasureRequest)
        .where(ErasureRequest.beneficiary_id == beneficiary_id, ErasureRequest.decided_at.is_(None))
        .values(decided_at=utcnow(), decided_by=actor.name, decision=decision, decision_reason=reason)
        .execution_options(synchronize_session=False)
    )


def confirm_erasure_request(
    session: Session, redis_client: redis.Redis, actor: Actor, request_id: int
) -> OutboundMessage:
    """Erase the person who asked, with the request as the reason, and owe them the SMS that says it is done.

    Returns the notice; the caller commits, then kicks the transactional queue.
    """
    request, beneficiary = _open_request(session, actor, request_id)
    contact = beneficiary.contact
    phone, language = contact.phone, beneficiary.language  # the person's own language (household phones)
    erasure = erase_person(
        session, redis_client, actor, beneficiary.reference, f"erasure request {request.id}, by {request.channel}"
    )
    _close(session, actor, beneficiary.id, ErasureDecision.CONFIRMED, f"erased {erasure.reference}")
    return owe_message(session, Recipient(phone, contact.id, language), MessageKind.ERASURE_NOTICE)


def decline_erasure_request(session: Session, actor: Actor, request_id: int, reason: str) -> None:
    """Decline the request (the person could not be reached, or said it was not them); audited, nothing erased."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureRequestError("say why the request is declined")
    if len(reason) > MAX_DECLINE_REASON_LENGTH:
        raise ErasureRequestError(f"the reason is longer than {MAX_DECLINE_REASON_LENGTH} characters")
    request, beneficiary = _open_request(session, actor, request_id)
    if not actor.can_see_district(beneficiary.district):
        raise ErasureRequestError(f"no erasure request {request_id}")
    _close(session, actor, beneficiary.id, ErasureDecision.DECLINED, reason)
    actor.audit(session, "data.erasure_declined", "beneficiary", beneficiary.reference, request=request.id)
