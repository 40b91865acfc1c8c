"""Writing what the gateway owes: a message row in the caller's transaction, before anything is sent."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.people import Contact, Language
from notifications.encoding import sms_parts
from notifications.texts import sms_catalogue


def owe_message(
    session: Session,
    contact: Contact,
    kind: MessageKind,
    *,
    priority: MessagePriority = MessagePriority.TRANSACTIONAL,
    text_key: str | None = None,
    **params,
) -> OutboundMessage:
    """Add a `queued` message for `contact`, rendered in their language from the SMS catalogue. Does not commit.

    The text is the catalogue entry `text_key`, by default the one named like `kind`.

    Writing the row in the same transaction as the change it reports is what makes the notice exactly-once: the
    change and the debt commit together or not at all.
    """
    language = contact.language or Language.ENGLISH
    body = sms_catalogue().get(text_key or kind, language, **params)
    message = OutboundMessage(
        phone=contact.phone,
        contact_id=contact.id,
        kind=kind,
        priority=priority,
        language=language,
        body=body,
        parts=sms_parts(body),
    )
    session.add(message)
    session.flush()
    return message
