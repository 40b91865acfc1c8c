"""Grants and their lifecycle: a state machine whose every move is an event with who, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String, Text, bindparam, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

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
# Longest reason for a move: it is read out in an SMS and on the timeline, so a longer one is refused, not cut.
MAX_REASON_LENGTH = 500


class GrantError(ValueError):
    """A grant move was refused; the message says why, in words an officer can act on."""


class IllegalTransitionError(GrantError):
    pass


class Grant(TimestampMixin, Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=S.REGISTERED, index=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # maloti (LSL)
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    grant: Mapped[Grant] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return f"<GrantEvent id={self.id} {self.from_status}->{self.to_status}>"


def format_maloti(amount: Decimal | None) -> str:
    """`Decimal('1500')` -> `M1,500.00`, the way the programme writes amounts."""
    if amount is None:
        return "-"
    return f"M{amount:,.2f}"


def parse_amount(text: str) -> Decimal:
    """Read `1500`, `1,500.00` or `M1500` as maloti; refuse anything that is not a positive amount."""
    cleaned = text.strip().upper().removeprefix("M").replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise GrantError(f"amount {text!r} is not a number") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise GrantError(f"amount {text!r} must be positive, with at most two decimals")
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


def grant_summary(db: Executor, phone: str) -> GrantSummary | None:
    """The beneficiary registered with `phone` and its grant, in one query; None for a number not registered."""
    row = db.execute(_SUMMARY, {"phone": phone}).first()
    return GrantSummary(*row) if row is not None else None


def move_grant(
    session: Session,
    grant: Grant,
    to_status: GrantStatus | str,
    *,
    actor: str,
    reason: str | None = None,
    amount: Decimal | None = None,
    channel: PaymentChannel | str | None = None,
    payment_reference: str | None = None,
) -> GrantEvent:
    """Move `grant` to `to_status`, or raise `GrantError` saying why not. Does not commit.

    An approval needs an amount; scheduling a payment needs a channel; not eligible and withdrawn need a reason.
    Channel, payment reference and reason are checked here (`parse_channel`, `clean_payment_reference`,
    `clean_reason`), so every way of moving a grant refuses the same input with the same words.
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
    if amount is not None:
        grant.amount = amount
    if target == S.APPROVED and grant.amount is None:
        raise GrantError("an amount is required to approve a grant")
    if chosen_channel is not None:
        grant.payment_channel = chosen_channel
    if target == S.PAYMENT_SCHEDULED and grant.payment_channel is None:
        raise GrantError("a payment channel is required to schedule a payment")
    if payment_reference is not None:
        grant.payment_reference = payment_reference
    grant.status = target
    event = GrantEvent(grant_id=grant.id, from_status=current, to_status=target, actor=actor, reason=reason)
    session.add(event)
    session.flush()
    return event


def find_grant_by_reference(session: Session, reference: str) -> Grant | None:
    return session.execute(
        select(Grant)
        .join(Beneficiary, Grant.beneficiary_id == Beneficiary.id)
        .where(Beneficiary.reference == reference)
    ).scalar_one_or_none()
