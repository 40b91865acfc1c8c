"""Grants and their lifecycle: a state machine whose every move is an event with who, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String, Text, bindparam, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from config import Settings
from models.base import Base, TimestampMixin, UtcDateTime, utcnow
from models.db import Executor
from models.people import Beneficiary, Contact


class GrantStatus(StrEnum):
    REGISTERED = "registered"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    NOT_ELIGIBLE = "not_eligible"
    PAYMENT_SCHEDULED = "payment_scheduled"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    WITHDRAWN = "withdrawn"


class PaymentChannel(StrEnum):
    MPESA = "mpesa"
    ECOCASH = "ecocash"
    BANK = "bank"
    CASH = "cash"


S = GrantStatus
# The legal moves. `withdrawn` is reachable from every state that is not final.
_FORWARD = {
    S.REGISTERED: {S.UNDER_REVIEW},
    S.UNDER_REVIEW: {S.APPROVED, S.NOT_ELIGIBLE},
    S.APPROVED: {S.PAYMENT_SCHEDULED},
    S.PAYMENT_SCHEDULED: {S.PAID, S.PAYMENT_FAILED},
    S.PAYMENT_FAILED: {S.PAYMENT_SCHEDULED},
}
FINAL_STATUSES = frozenset({S.PAID, S.NOT_ELIGIBLE, S.WITHDRAWN})
TRANSITIONS: dict[GrantStatus, frozenset[GrantStatus]] = {
    status: frozenset(_FORWARD.get(status, set()) | ({S.WITHDRAWN} if status not in FINAL_STATUSES else set()))
    for status in GrantStatus
}
# Moves that must say why: the returnee and the auditors are owed a reason.
REASON_REQUIRED = frozenset({S.NOT_ELIGIBLE, S.WITHDRAWN})
# Changes the returnee hears about by SMS.
NOTIFIED_STATUSES = frozenset({S.APPROVED, S.NOT_ELIGIBLE, S.PAYMENT_SCHEDULED, S.PAID, S.PAYMENT_FAILED})
# Longest payment reference: the column's width. A longer one is refused, never cut: it is a payment record, and a
# shortened reference would match no payment at the channel.
MAX_PAYMENT_REFERENCE_LENGTH = 64
# Amounts are stored as Numeric(AMOUNT_DIGITS, AMOUNT_PLACES): whole cents, and nothing the column cannot hold
# reaches the database (PostgreSQL would refuse it with an error, SQLite would keep it as a float).
AMOUNT_DIGITS = 12
AMOUNT_PLACES = 2
CENT = Decimal(1).scaleb(-AMOUNT_PLACES)
MAX_STORABLE_AMOUNT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES) - CENT
# Longest reason for a move: it is read out in an SMS and on the timeline, so a longer one is refused, not cut.
MAX_REASON_LENGTH = 500


class GrantError(ValueError):
    """A grant move was refused; the message says why, in words an officer can act on."""


class IllegalTransitionError(GrantError):
    pass


class FourEyesError(GrantError):
    """Segregation of duties: whoever set a grant's amount may not also schedule its payment."""


@dataclass(frozen=True)
class GrantRules:
    """The programme's own limits on staff grant moves: the ceiling (`GRANT_MAX_AMOUNT`) and segregation of duties
    (`GRANT_FOUR_EYES`). Every staff move passes them (`notifications.casework.grants.move_grant_for`)."""

    max_amount: Decimal
    four_eyes: bool

    @classmethod
    def of(cls, settings: Settings) -> GrantRules:
        return cls(max_amount=settings.grant_max_amount, four_eyes=settings.grant_four_eyes)


class Grant(TimestampMixin, Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=S.REGISTERED, index=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(AMOUNT_DIGITS, AMOUNT_PLACES))  # maloti (LSL)
    payment_channel: Mapped[str | None] = mapped_column(String(10))
    payment_reference: Mapped[str | None] = mapped_column(String(MAX_PAYMENT_REFERENCE_LENGTH))

    beneficiary: Mapped[Beneficiary] = relationship(back_populates="grant")
    events: Mapped[list[GrantEvent]] = relationship(back_populates="grant", order_by="GrantEvent.id")

    def __repr__(self) -> str:
        return f"<Grant id={self.id} status={self.status}>"


class GrantEvent(Base):
    __tablename__ = "grant_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    # The amount this event set: the approved amount on an approval, the new one on an amount change (whose
    # `previous_amount` is the one it replaced, and whose from and to status are the same). None: amount untouched.
    amount: Mapped[Decimal | None] = mapped_column(Numeric(AMOUNT_DIGITS, AMOUNT_PLACES))
    previous_amount: Mapped[Decimal | None] = mapped_column(Numeric(AMOUNT_DIGITS, AMOUNT_PLACES))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    grant: Mapped[Grant] = relationship(back_populates="events")

    @property
    def is_amount_change(self) -> bool:
        return self.previous_amount is not None

    def __repr__(self) -> str:
        return f"<GrantEvent id={self.id} {self.from_status}->{self.to_status}>"


def format_maloti(amount: Decimal | None) -> str:
    """`Decimal('1500')` -> `M1,500.00`, the way the programme writes amounts."""
    if amount is None:
        return "-"
    return f"M{amount:,.2f}"


def parse_amount(text: str) -> Decimal:
    """Read `1500`, `1,500.00` or `M1500` as maloti; refuse anything that is not a positive amount."""
    return check_amount(text.strip().upper().removeprefix("M").replace(",", ""), shown=text)


def check_amount(value: Decimal | int | str, *, shown: object = None) -> Decimal:
    """`value` as an amount in maloti, or `GrantError` saying why it is none.

    `NaN`, infinities, zero, negative amounts, fractions of a cent and anything the column cannot hold (`1E+30`,
    `1e999999`) are refused here with a reason: the decimal arithmetic would otherwise raise on them, or the
    database would, both far from the officer who typed them.
    """
    shown = value if shown is None else shown
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise GrantError(f"amount {shown!r} is not a number") from None
    if not amount.is_finite():
        raise GrantError(f"amount {shown!r} is not a finite number")
    if amount <= 0:
        raise GrantError(f"amount {shown!r} must be positive")
    if amount > MAX_STORABLE_AMOUNT:
        raise GrantError(f"amount {shown!r} is beyond any grant (the most the gateway stores is {MAX_STORABLE_AMOUNT})")
    if amount != amount.quantize(CENT):
        raise GrantError(f"amount {shown!r} has fractions of a cent; use at most {AMOUNT_PLACES} decimals")
    return amount


def parse_channel(text: PaymentChannel | str | None) -> PaymentChannel | None:
    """A payment channel as staff and payment files write it (`M-Pesa`, `mpesa`, `EcoCash`); None for none given."""
    if text is None or not str(text).strip():
        return None
    try:
        return PaymentChannel(str(text).strip().lower().replace("-", ""))
    except ValueError:
        raise GrantError(f"unknown payment channel {str(text).strip()!r}; known: {', '.join(PaymentChannel)}") from None


def clean_payment_reference(text: str | None) -> str | None:
    """The payment reference as stored (ends trimmed; None for none), or `GrantError` for one too long to keep."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_PAYMENT_REFERENCE_LENGTH:
        raise GrantError(
            f"the payment reference is {len(cleaned)} characters; the longest kept is {MAX_PAYMENT_REFERENCE_LENGTH}"
        )
    return cleaned or None


def clean_reason(text: str | None) -> str | None:
    """The reason as stored (ends trimmed; None for none), or `GrantError` for one longer than the limit."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_REASON_LENGTH:
        raise GrantError(f"the reason is {len(cleaned)} characters; keep it to {MAX_REASON_LENGTH}")
    return cleaned or None


_grants = Grant.__table__
_OPEN_GRANT = insert(_grants).returning(_grants.c.id)
_FIRST_EVENT = insert(GrantEvent.__table__)
_beneficiaries, _contacts = Beneficiary.__table__, Contact.__table__
_SUMMARY = (
    select(
        _beneficiaries.c.reference,
        _beneficiaries.c.full_name,
        _beneficiaries.c.district,
        _grants.c.status,
        _grants.c.amount,
        _grants.c.payment_channel,
    )
    .join_from(_beneficiaries, _contacts)
    .outerjoin(_grants, _grants.c.beneficiary_id == _beneficiaries.c.id)
    .where(_contacts.c.phone == bindparam("phone"))
    .order_by(_beneficiaries.c.id)
)


def open_grant(db: Executor, beneficiary_id: int, actor: str) -> int:
    """The `registered` grant a new beneficiary starts with, and its first event; returns the grant's id."""
    now = utcnow()
    grant_id = db.execute(
        _OPEN_GRANT, {"beneficiary_id": beneficiary_id, "status": S.REGISTERED, "created_at": now, "updated_at": now}
    ).scalar_one()
    db.execute(
        _FIRST_EVENT,
        {"grant_id": grant_id, "from_status": None, "to_status": S.REGISTERED, "actor": actor, "created_at": now},
    )
    return grant_id


@dataclass(frozen=True)
class GrantSummary:
    """What the USSD menu shows a registered number about itself and its grant."""

    reference: str
    full_name: str
    district: str
    status: str | None
    amount: Decimal | None
    payment_channel: str | None


def grant_summaries(db: Executor, phone: str) -> list[GrantSummary]:
    """Everyone registered with `phone` (several on a household phone), each with their grant, in registration
    order, in one query; empty for a number not registered."""
    return [GrantSummary(*row) for row in db.execute(_SUMMARY, {"phone": phone})]


def move_grant(
    session: Session,
    grant: Grant,
    to_status: GrantStatus | str,
    *,
    actor: str,
    reason: str | None = None,
    amount: Decimal | int | str | None = None,
    channel: PaymentChannel | str | None = None,
    payment_reference: str | None = None,
    rules: GrantRules | None = None,
) -> GrantEvent:
    """Move `grant` to `to_status`, or raise `GrantError` saying why not. Does not commit.

    An approval needs an amount, which its event records; scheduling a payment needs a channel; not eligible and
    withdrawn need a reason. A later move that gives another amount is an amount change: it needs a reason and is
    an event of its own (old and new amount) before the move's; repeating the amount is no change. Channel, payment
    reference, amount and reason are checked here, so every way of moving a grant refuses the same input with the
    same words. `rules` adds the programme's ceiling and segregation of duties; every staff move passes them
    (`notifications.casework.grants.move_grant_for`); without them only the lifecycle applies (tests, seeding).
    """
    try:
        target = GrantStatus(to_status)
    except ValueError:
        raise GrantError(f"unknown status {to_status!r}; known: {', '.join(GrantStatus)}") from None
    current = GrantStatus(grant.status)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final status)"
        raise IllegalTransitionError(f"cannot move a grant from {current} to {target}; allowed: {allowed}")
    reason = clean_reason(reason)
    if target in REASON_REQUIRED and reason is None:
        raise GrantError(f"a reason is required to move a grant to {target}")
    chosen_channel = parse_channel(channel)
    payment_reference = clean_payment_reference(payment_reference)
    new_amount = _new_amount(grant, target, amount, reason, rules)
    if target == S.PAYMENT_SCHEDULED and (chosen_channel or grant.payment_channel) is None:
        raise GrantError("a payment channel is required to schedule a payment")
    if rules is not None and rules.four_eyes and target == S.PAYMENT_SCHEDULED:
        setter = actor if new_amount is not None else amount_set_by(session, grant)
        if setter == actor:
            raise FourEyesError(
                f"{actor} set this grant's amount, so another officer must schedule its payment (segregation of"
                " duties, GRANT_FOUR_EYES)"
            )
    if new_amount is not None and target != S.APPROVED:
        session.add(
            GrantEvent(
                grant_id=grant.id,
                from_status=current,
                to_status=current,
                actor=actor,
                reason=reason,
                amount=new_amount,
                previous_amount=grant.amount,
            )
        )
    if new_amount is not None:
        grant.amount = new_amount
    if chosen_channel is not None:
        grant.payment_channel = chosen_channel
    if payment_reference is not None:
        grant.payment_reference = payment_reference
    grant.status = target
    event = GrantEvent(
        grant_id=grant.id,
        from_status=current,
        to_status=target,
        actor=actor,
        reason=reason,
        amount=new_amount if target == S.APPROVED else None,
    )
    session.add(event)
    session.flush()
    return event


def _new_amount(
    grant: Grant, target: GrantStatus, given: Decimal | int | str | None, reason: str | None, rules: GrantRules | None
) -> Decimal | None:
    """The amount this move sets (an approval, or a change with its reason), or None when it leaves it alone."""
    amount = check_amount(given) if given is not None else None
    if target == S.APPROVED and amount is None and grant.amount is None:
        raise GrantError("an amount is required to approve a grant")
    if amount is None or amount == grant.amount:
        return None if target != S.APPROVED else (amount or grant.amount)
    if target != S.APPROVED and grant.amount is None:
        raise GrantError("an amount is set when the grant is approved, not before")
    if rules is not None and amount > rules.max_amount:
        raise GrantError(
            f"amount {format_maloti(amount)} is above the programme's ceiling of {format_maloti(rules.max_amount)}"
            " (GRANT_MAX_AMOUNT)"
        )
    if target != S.APPROVED and reason is None:
        raise GrantError(
            f"the amount {format_maloti(amount)} differs from the grant's {format_maloti(grant.amount)}: a change of"
            " amount needs a reason"
        )
    return amount


def amount_set_by(session: Session, grant: Grant) -> str | None:
    """Who set the grant's standing amount: the approver, or whoever changed it since."""
    return session.execute(
        select(GrantEvent.actor)
        .where(GrantEvent.grant_id == grant.id, GrantEvent.amount.is_not(None))
        .order_by(GrantEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def find_grant_by_reference(session: Session, reference: str) -> Grant | None:
    return session.execute(
        select(Grant)
        .join(Beneficiary, Grant.beneficiary_id == Beneficiary.id)
        .where(Beneficiary.reference == reference)
    ).scalar_one_or_none()
