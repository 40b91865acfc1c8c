"""Grant changes that the returnee hears about: the move and its SMS notice commit together, exactly once.

`move_grant_for` is the one staff grant move, whichever way it came (console, API, CLI, a payment results file): it
checks the actor may move this grant, moves it (`models.grants.move_grant` holds every rule on the input), owes the
SMS notice and writes the `grant.move` audit entry (and a `grant.amount_change` entry, with the old and new amount
and the reason, when the move changed an approved amount), all in the caller's transaction. It always applies the
programme's `GrantRules` (ceiling, segregation of duties), which the interfaces build from the settings. The
caller commits, then kicks the queue for the notice it got back (`notifications.sms.queues.kick`).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from models.actors import Actor
from models.grants import (
    NOTIFIED_STATUSES,
    Grant,
    GrantError,
    GrantEvent,
    GrantRules,
    GrantStatus,
    find_grant_by_reference,
    format_maloti,
    move_grant,
)
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary, Language
from models.staff import Role
from notifications.sms.outbox import owe_message, record_unsendable_notice
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
    rules: GrantRules | None = None,
) -> tuple[GrantEvent, OutboundMessage | None]:
    """Move the grant and, for a change that matters to the returnee, owe them an SMS in the same transaction (for
    a person without a phone, keep the notice unsent: `models.notices`; no message is returned then).

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
        rules=rules,
    )
    if event.to_status not in NOTIFIED_STATUSES:
        return event, None
    beneficiary: Beneficiary = grant.beneficiary
    # The person's own language (a phone shared by a household may hold people who read different ones), and
    # their first name in the text: the phone's other people see whom the notice is about.
    language = beneficiary.language or Language.ENGLISH
    channel_name = sms_catalogue().get(f"channel.{grant.payment_channel}", language) if grant.payment_channel else ""
    params = {
        "text_key": f"grant.{event.to_status}",
        "first_name": beneficiary.first_name,
        "reference": beneficiary.reference,
        "amount": format_maloti(grant.amount),
        "channel": channel_name,
        "reason": event.reason or "",
    }
    if beneficiary.contact is None:
        # Registered without a phone: the grant moves all the same, and the notice is kept for the officer to pass on.
        record_unsendable_notice(session, beneficiary.id, MessageKind.GRANT_NOTICE, language=language, **params)
        return event, None
    message = owe_message(session, beneficiary.contact, MessageKind.GRANT_NOTICE, language=language, **params)
    return event, message


class GrantNotFoundError(GrantError):
    """No grant for this reference that the actor may see (the two are not told apart)."""


def move_grant_for(
    session: Session,
    actor: Actor,
    grant_or_reference: Grant | str,
    to_status: GrantStatus | str,
    *,
    rules: GrantRules,
    reason: str | None = None,
    amount: Decimal | None = None,
    channel: str | None = None,
    payment_reference: str | None = None,
    payment_file: str | None = None,
) -> tuple[GrantEvent, OutboundMessage | None]:
    """Move a grant for `actor`, owe the SMS notice and write the `grant.move` audit entry. Does not commit.

    Needs the officer role; a grant outside the actor's districts is `GrantNotFoundError`, as an unknown reference
    is. Any other refusal is `GrantError` with the reason, and then nothing is written. `payment_file` names the
    payment results file (its `payments.import` entry's id) that the move came from.
    """
    actor.require_role(Role.OFFICER)
    if isinstance(grant_or_reference, Grant):
        grant = grant_or_reference
    else:
        grant = find_grant_by_reference(session, grant_or_reference.strip())
    if grant is None or not actor.can_see_district(grant.beneficiary.district):
        reference = grant_or_reference if grant is None else grant.beneficiary.reference
        raise GrantNotFoundError(f"no beneficiary with reference {reference}")
    from_status, from_amount = grant.status, grant.amount
    event, notice = change_grant_status(
        session,
        grant,
        to_status,
        actor=actor.name,
        reason=reason,
        amount=amount,
        channel=channel,
        payment_reference=payment_reference,
        rules=rules,
    )
    details = {"payment_file": payment_file} if payment_file else {}
    if from_amount is not None and grant.amount != from_amount:
        actor.audit(
            session,
            "grant.amount_change",
            "grant",
            grant.id,
            reference=grant.beneficiary.reference,
            status=from_status,
            old_amount=str(from_amount),
            new_amount=str(grant.amount),
            reason=event.reason,
            **details,
        )
    actor.audit(
        session,
        "grant.move",
        "grant",
        grant.id,
        reference=grant.beneficiary.reference,
        from_status=from_status,
        to_status=event.to_status,
        reason=event.reason,
        amount=str(grant.amount) if grant.amount is not None else None,
        channel=grant.payment_channel,
        payment_reference=grant.payment_reference,
        notice_id=notice.id if notice is not None else None,
        **details,
    )
    return event, notice
