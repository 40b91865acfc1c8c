"""Grant changes that the returnee hears about: the move and its SMS notice commit together, exactly once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from models.grants import NOTIFIED_STATUSES, Grant, GrantEvent, GrantStatus, format_maloti, move_grant
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary
from notifications.sms.outbox import owe_message
from notifications.sms.texts import sms_catalogue


def change_grant_status(
    session: Session,
    grant: Grant,
    to_status: GrantStatus | str,
    *,
    actor: str,
    reason: str | None = None,
    amount: Decimal | None = None,
    channel: str | None = None,
    payment_reference: str | None = None,
) -> tuple[GrantEvent, OutboundMessage | None]:
    """Move the grant and, for a change that matters to the returnee, owe them an SMS in the same transaction.

    Raises `models.grants.GrantError` when the move is refused; nothing is written then.
    """
    event = move_grant(
        session,
        grant,
        to_status,
        actor=actor,
        reason=reason,
        amount=amount,
        channel=channel,
        payment_reference=payment_reference,
    )
    if event.to_status not in NOTIFIED_STATUSES:
        return event, None
    beneficiary: Beneficiary = grant.beneficiary
    language = beneficiary.language or "en"
    channel_name = sms_catalogue().get(f"channel.{grant.payment_channel}", language) if grant.payment_channel else ""
    message = owe_message(
        session,
        beneficiary.contact,
        MessageKind.GRANT_NOTICE,
        text_key=f"grant.{event.to_status}",
        first_name=beneficiary.first_name,
        reference=beneficiary.reference,
        amount=format_maloti(grant.amount),
        channel=channel_name,
        reason=reason or "",
    )
    return event, message
