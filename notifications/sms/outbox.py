"""Writing what the gateway owes: a message row in the caller's transaction, before anything is sent.

Writing the row in the same transaction as the change it reports is what makes a notice exactly-once: the change
and the debt commit together or not at all. The caller enqueues the send after its commit (`queues.kick`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from models.db import Executor
from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.notices import UnsentReason, record_unsent_notice
from models.people import Contact, Language
from notifications.sms.encoding import sms_parts
from notifications.sms.texts import sms_catalogue

_OWE = insert(OutboundMessage.__table__).returning(OutboundMessage.__table__.c.id)


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to, as far as writing it goes; a `Contact` has the same three attributes."""

    phone: str
    id: int | None
    language: str | None


def owe_text(
    session: Session,
    contact: Contact | Recipient,
    kind: MessageKind,
    body: str,
    *,
    priority: MessagePriority = MessagePriority.TRANSACTIONAL,
) -> OutboundMessage:
    """Add a `queued` message with `body` as written (staff replies, campaigns). Does not commit."""
    message = OutboundMessage(**_row(contact, kind, body, priority, contact.language or Language.ENGLISH))
    session.add(message)
    session.flush()
    return message


def owe_message(
    session: Session,
    contact: Contact | Recipient,
    kind: MessageKind,
    *,
    priority: MessagePriority = MessagePriority.TRANSACTIONAL,
    text_key: str | None = None,
    language: str | None = None,
    **params,
) -> OutboundMessage:
    """Add a `queued` message rendered from the SMS catalogue entry `text_key` (default: named like `kind`).

    The language is the contact's, unless `language` says otherwise (a keyword reply to an unknown number).
    """
    language, body = _render(contact, kind, text_key, language, params)
    message = OutboundMessage(**_row(contact, kind, body, priority, language))
    session.add(message)
    session.flush()
    return message


def record_owed_message(
    db: Executor,
    recipient: Contact | Recipient,
    kind: MessageKind,
    *,
    priority: MessagePriority = MessagePriority.TRANSACTIONAL,
    text_key: str | None = None,
    language: str | None = None,
    **params,
) -> int:
    """`owe_message` as one Core `INSERT` (a connection or a session), for the USSD hop; returns the message id."""
    language, body = _render(recipient, kind, text_key, language, params)
    return db.execute(_OWE, _row(recipient, kind, body, priority, language)).scalar_one()


def record_unsendable_notice(
    db: Executor,
    beneficiary_id: int,
    kind: MessageKind,
    *,
    language: str | None,
    text_key: str | None = None,
    **params,
) -> int:
    """Keep, unsent, the notice a person without a phone is owed (`models.notices`): the text as it would have read
    in their language, never given to a provider. In the caller's transaction; returns its id."""
    language = language or Language.ENGLISH
    body = sms_catalogue().get(text_key or kind, language, **params)
    return record_unsent_notice(db, beneficiary_id, kind, language, body, UnsentReason.NO_PHONE)


def _render(recipient, kind: MessageKind, text_key: str | None, language: str | None, params: dict) -> tuple[str, str]:
    language = language or recipient.language or Language.ENGLISH
    return language, sms_catalogue().get(text_key or kind, language, **params)


def _row(recipient, kind: MessageKind, body: str, priority: MessagePriority, language: str) -> dict:
    """The columns of a new message; the rest (status `queued`, no attempts, timestamps) are the model's defaults."""
    return {
        "phone": recipient.phone,
        "contact_id": recipient.id,
        "kind": kind,
        "priority": priority,
        "language": language,
        "body": body,
        "parts": sms_parts(body),
    }


def requeue_failed(session: Session, since: datetime | None = None) -> int:
    """Put failed messages (optionally only those created since `since`) back in the queue; returns how many.

    For an operator after an outage: this is a path that may re-send a message
    the provider might already have taken, so it runs only when a person asks.
    """
    conditions = [OutboundMessage.status == MessageStatus.FAILED]
    if since is not None:
        conditions.append(OutboundMessage.created_at >= since)
    result = session.execute(
        update(OutboundMessage)
        .where(*conditions)
        .values(
            status=MessageStatus.QUEUED,
            attempts=0,
            next_attempt_at=None,
            failure_reason=None,
            final_at=None,
            provider_message_id=None,
            claim_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
