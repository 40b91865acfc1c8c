"""Resolving registrations held because their national ID was taken (`models.held`): the duplicate-ID review.

Officers and admins, within their districts, see the held registration beside the beneficiary who holds the ID,
and either register the held one under a corrected ID (the returnee then gets the usual confirmation SMS) or
dismiss it. Each is one function that takes the `Actor`, checks it, and writes the audit entry in the caller's
transaction (IDs masked: the audit log never holds a full national ID). The caller commits, then kicks the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.actors import Actor, PermissionDeniedError
from models.clock import utcnow
from models.held import HeldRegistration, HeldStatus, holder_of, waiting_registrations
from models.people import Beneficiary, ConsentChannel
from models.phone import mask_national_id
from models.registration import DEFAULT_MAX_PER_PHONE, RegistrationError
from models.staff import Role
from notifications.casework.registration import register_beneficiary_for

AUDIT_OBJECT = "held_registration"
# The longest reason kept with a dismissal; the audit column is wider.
REASON_MAX_CHARS = 500


@dataclass(frozen=True)
class DuplicatePair:
    """A held registration beside the beneficiary who holds its ID (None: corrected meanwhile, or in a district
    the staff member cannot see, whose name is then not shown)."""

    held: HeldRegistration
    holder: Beneficiary | None
    holder_hidden: bool
    masked_id: str


class HeldRegistrationError(ValueError):
    """The held registration cannot be resolved this way; the message says why, for the staff member."""


def get_held_for(session: Session, actor: Actor, held_id: int) -> HeldRegistration | None:
    """The held registration, if the actor (officer or admin) may see its district; else None (a 404)."""
    actor.require_role(Role.OFFICER)
    held = session.get(HeldRegistration, held_id)
    if held is None or not actor.can_see_district(held.district):
        return None
    return held


def duplicate_review(session: Session, actor: Actor) -> list[DuplicatePair]:
    """The held registrations in the actor's districts, oldest first, each beside the holder of its ID."""
    actor.require_role(Role.OFFICER)
    pairs = []
    for held in waiting_registrations(session, actor.district_list):
        holder = holder_of(session, held)
        hidden = holder is not None and not actor.can_see_district(holder.district)
        pairs.append(DuplicatePair(held, None if hidden else holder, hidden, mask_national_id(held.national_id)))
    return pairs


def _open(session: Session, actor: Actor, held_id: int) -> HeldRegistration:
    held = get_held_for(session, actor, held_id)
    if held is None:
        raise PermissionDeniedError("no such held registration in your districts")
    if held.status != HeldStatus.HELD:
        raise HeldRegistrationError(f"this registration was already {held.status} by {held.resolved_by}")
    return held


def register_held(
    session: Session,
    actor: Actor,
    held_id: int,
    national_id: str | None,
    *,
    max_per_phone: int = DEFAULT_MAX_PER_PHONE,
) -> str:
    """Register the held registration under `national_id` (corrected; None registers it without one); returns the
    new reference and owes the confirmation SMS. Audited as `held_registration.register`. A phone that has filled
    up with its household since (`max_per_phone`) is refused with the reason, like any registration."""
    held = _open(session, actor, held_id)
    national_id = (national_id or "").strip().upper() or None
    try:
        registered = register_beneficiary_for(
            session,
            actor,
            held.answers(national_id),
            phone=held.phone,
            language=held.language,
            consent=ConsentChannel.USSD,  # the person agreed on their phone when they registered
            max_per_phone=max_per_phone,
        )
    except RegistrationError as exc:
        raise HeldRegistrationError(f"could not register: {exc}") from None
    _resolve(held, actor, HeldStatus.REGISTERED)
    held.beneficiary_id = registered.beneficiary_id
    session.flush()
    actor.audit(
        session,
        f"{AUDIT_OBJECT}.register",
        AUDIT_OBJECT,
        held.id,
        reference=registered.reference,
        national_id=mask_national_id(national_id),
    )
    return registered.reference


def dismiss_held(session: Session, actor: Actor, held_id: int, reason: str) -> None:
    """Drop the held registration (a second try by the same person, a mistake, a fraud attempt), with a reason.
    Audited as `held_registration.dismiss`."""
    reason = " ".join(reason.split())[:REASON_MAX_CHARS]
    if not reason:
        raise HeldRegistrationError("say why the registration is dismissed")
    held = _open(session, actor, held_id)
    _resolve(held, actor, HeldStatus.DISMISSED)
    session.flush()
    actor.audit(session, f"{AUDIT_OBJECT}.dismiss", AUDIT_OBJECT, held.id, reason=reason)


def _resolve(held: HeldRegistration, actor: Actor, status: HeldStatus) -> None:
    held.status = status
    held.resolved_by = actor.name
    held.resolved_at = utcnow()
