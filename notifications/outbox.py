"""Writing what the gateway owes: a message row in the caller's transaction, before anything is sent.

Writing the row in the same transaction as the change it reports is what makes a notice exactly-once: the change
and the debt commit together or not at all. The caller enqueues the send after its commit (`queues.kick`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.people import Contact, Language
from notifications.encoding import sms_parts
from notifications.texts import sms_catalogue


def owe_text(
    session: Session,
    contact: Contact,
    kind: MessageKind,
    body: str,
    *,
    priority: MessagePriority = MessagePriority.TRANSACTIONAL,
) -> OutboundMessage:
    """Add a `queued` message with `body` as written (staff replies, campaigns). Does not commit."""
    message = OutboundMessage(
        phone=contact.phone,
        contact_id=contact.id,
        kind=kind,
        priority=priority,
        language=contact.language or Language.ENGLISH,
        body=body,
        parts=sms_parts(body),
    )
    session.add(message)
    session.flush()
    return message


def owe_message(
    session: Session,
    contact: Contact,
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
    language = language or contact.language or Language.ENGLISH
    body = sms_catalogue().get(text_key or kind, language, **params)
    message = owe_text(session, contact, kind, body, priority=priority)
    message.language = language
    return message


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
