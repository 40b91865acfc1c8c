"""Incoming SMS: keywords act at once and answer in the sender's language; answers to an open check-in go to it
(`notifications.checkins.sms`); anything else waits for staff."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.messages import InboundMessage, MessageKind, OutboundMessage
from models.people import Language, find_contact, get_or_create_contact
from models.phone import mask_phone
from models.requests import ErasureChannel, ask_for_erasure
from notifications.checkins.sms import CHECKIN_KEYWORD, answer_by_sms
from notifications.sms.number_limits import KEYWORD_REPLY, NumberLimits
from notifications.sms.outbox import owe_message

log = logging.getLogger(__name__)

STOP, START, HELP, DELETE = "stop", "start", "help", "delete"
# Each keyword in both languages; the Sesotho ones also tell us which language to answer in.
KEYWORDS = {
    "STOP": (STOP, Language.ENGLISH),
    "EMISA": (STOP, Language.SESOTHO),
    "START": (START, Language.ENGLISH),
    "QALA": (START, Language.SESOTHO),
    "HELP": (HELP, Language.ENGLISH),
    "THUSO": (HELP, Language.SESOTHO),
    # A request that staff confirm before anything is erased (models.requests.ErasureRequest).
    "DELETE": (DELETE, Language.ENGLISH),
    "HLAKOLA": (DELETE, Language.SESOTHO),
}


def parse_keyword(text: str) -> tuple[str, str] | None:
    """`' stop '`, `'Stop.'` and `'EMISA'` are keywords; `'stop sending me'` is a message for staff."""
    word = " ".join(text.split()).strip(".!").upper()
    return KEYWORDS.get(word)


def receive_sms(
    session: Session,
    *,
    limits: NumberLimits,
    provider_id: str,
    phone: str,
    text: str,
    to: str | None = None,
    link_id: str | None = None,
    network_code: str | None = None,
    sent_at: datetime | None = None,
    served: bool = True,
    route: str | None = None,
) -> tuple[InboundMessage | None, OutboundMessage | None]:
    """Store and act on one incoming SMS; (None, None) when the provider re-sent one we already have.

    `served` is False for numbers outside Lesotho and South Africa: they are stored for staff, never answered.
    `route` is the SMS route it came in on; a keyword reply goes back on it.
    A keyword always acts (a STOP is never ignored), but is answered at most KEYWORD_REPLIES_PER_HOUR times an hour
    per number: anyone can text the programme, and the programme pays for every reply.
    """
    if session.execute(select(InboundMessage.id).where(InboundMessage.provider_id == provider_id)).first():
        return None, None
    keyword = parse_keyword(text) if served else None
    contact = get_or_create_contact(session, phone) if keyword else (find_contact(session, phone) if served else None)
    inbound = InboundMessage(
        provider_id=provider_id,
        phone=phone,
        to=to,
        text=text,
        link_id=link_id,
        network_code=network_code,
        route=route,
        contact_id=contact.id if contact else None,
        keyword=keyword[0] if keyword else None,
        sent_at=sent_at,
    )
    try:
        with session.begin_nested():
            session.add(inbound)
            session.flush()
    except IntegrityError:  # the same id arrived twice at once
        return None, None
    if keyword is None:
        # An answer to a check-in (or the YES that starts one) is the gateway's to act on, before the staff inbox.
        reply = answer_by_sms(session, contact, text, utcnow()) if contact is not None else None
        if reply is not None:
            inbound.keyword, inbound.handled_at, reply.route = CHECKIN_KEYWORD, utcnow(), route
            log.info("inbound SMS %s from %s: check-in answer", provider_id, mask_phone(phone))
            return inbound, reply
        log.info("inbound SMS %s from %s stored for staff", provider_id, mask_phone(phone))
        return inbound, None
    action, keyword_language = keyword
    language = contact.language or keyword_language
    text_key = f"keyword.{action}"
    if action == DELETE:
        text_key = f"keyword.delete_{ask_for_erasure(session, phone, ErasureChannel.SMS)}"
    elif action == STOP:
        contact.alerts_on = False
    elif action == START:
        contact.alerts_on = True
    inbound.handled_at = utcnow()
    if not limits.allow(KEYWORD_REPLY, phone):
        log.info("inbound SMS %s from %s: keyword %s, over the hourly limit", provider_id, mask_phone(phone), action)
        return inbound, None
    reply = owe_message(session, contact, MessageKind.KEYWORD_REPLY, text_key=text_key, language=language)
    reply.route = route
    log.info("inbound SMS %s from %s: keyword %s", provider_id, mask_phone(phone), action)
    return inbound, reply
