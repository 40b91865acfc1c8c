"""The staff inbox: what returnees asked of the programme and no rule could answer, until a person has.

Three kinds of item wait here: incoming SMS that were not keywords, call-back requests and problem reports from the
USSD menu. Staff assign an item to a colleague, answer by SMS, and mark it handled; each step takes the acting
`models.actors.Actor` (officers only) and writes its audit entry through it, in the same transaction. An SMS reply
is an outbox row like any other (`owe_text`), so the caller kicks the transactional queue after the commit.

Staff limited to districts see the items of beneficiaries in those districts, and every item from a number that is
not registered (it has no district yet). An item follows the number's beneficiary as it is now, not as it was when
the item came in: an SMS from a number that registers later (in Maseru, say) leaves the view of everyone limited to
other districts. An SMS from a number the gateway had not met carries no contact, so its item finds the contact
by the number it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from models.actors import Actor
from models.base import utcnow
from models.messages import InboundMessage, MessageKind, OutboundMessage
from models.people import Beneficiary, Contact, find_contact, get_or_create_contact, phone_holder
from models.phone import PhoneNumberError, mask_phone, normalize_phone
from models.requests import CallbackRequest, Feedback
from models.staff import Role, StaffUser
from notifications.sms.outbox import owe_text

# Items on one inbox page; the oldest open ones are the ones to worry about, so "open" lists oldest first.
INBOX_PAGE_SIZE = 100
# Longest staff reply: three GSM-7 parts. A longer answer belongs in a phone call.
REPLY_MAX_CHARS = 459
# Earlier staff SMS to the same number shown next to an item, so two officers do not answer the same question twice.
REPLY_HISTORY_SIZE = 10


class InboxKind(StrEnum):
    SMS = "sms"  # an incoming SMS that was not a keyword
    CALLBACK = "callback"  # a call-back request from the USSD menu
    FEEDBACK = "feedback"  # a problem reported from the USSD menu


class InboxView(StrEnum):
    OPEN = "open"
    MINE = "mine"  # open and assigned to the one asking
    HANDLED = "handled"
    ALL = "all"


_MODELS = {InboxKind.SMS: InboundMessage, InboxKind.CALLBACK: CallbackRequest, InboxKind.FEEDBACK: Feedback}
# The audit log's object type of each kind.
AUDIT_OBJECTS = {
    InboxKind.SMS: "inbound_message",
    InboxKind.CALLBACK: "callback_request",
    InboxKind.FEEDBACK: "feedback",
}


class InboxError(ValueError):
    """An inbox action that cannot be done; the message says why, for the staff member."""


class AlreadyHandledError(InboxError):
    """Someone closed the item first."""


class InboxItemNotFound(InboxError):
    """No such item, or one outside the staff member's districts (the two are not told apart)."""


@dataclass(frozen=True)
class InboxItem:
    kind: InboxKind
    id: int
    received_at: datetime
    phone: str
    text: str  # the SMS, the report, or the call-back topic
    reference: str | None  # the beneficiary's, when the number is registered
    full_name: str | None
    district: str | None
    language: str | None
    assigned_to_id: int | None
    assigned_to: str | None  # e-mail
    handled_at: datetime | None
    handled_by: str | None

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def is_open(self) -> bool:
        return self.handled_at is None


def _kind(kind: InboxKind | str) -> InboxKind:
    try:
        return InboxKind(kind)
    except ValueError:
        raise InboxItemNotFound(f"no inbox item kind {kind!r}") from None


def _item_query(kind: InboxKind, districts: Sequence[str]):
    """SELECT the item rows of `kind` with their contact, beneficiary and assignee, within `districts`."""
    model = _MODELS[kind]
    assignee = aliased(StaffUser)
    by_contact = Contact.id == model.contact_id
    if kind == InboxKind.SMS:
        by_contact = or_(by_contact, and_(model.contact_id.is_(None), Contact.phone == InboundMessage.phone))
    # One row per item: on a household phone, the first person registered with it that the staff member may see.
    visible = (lambda person: person.district.in_(districts),) if districts else ()
    query = (
        select(model, Contact, Beneficiary, assignee.email)
        .outerjoin(Contact, by_contact)
        .outerjoin(Beneficiary, phone_holder(Contact.id, *visible))
        .outerjoin(assignee, assignee.id == model.assigned_to_id)
    )
    if kind == InboxKind.SMS:
        query = query.where(InboundMessage.keyword.is_(None))
    if districts:
        anyone = aliased(Beneficiary)
        unregistered = ~exists(select(1).where(anyone.contact_id == Contact.id))
        query = query.where(or_(Beneficiary.id.is_not(None), Contact.id.is_(None), unregistered))
    return query


def _received_column(kind: InboxKind):
    return InboundMessage.received_at if kind == InboxKind.SMS else _MODELS[kind].created_at


def _item(kind: InboxKind, row, contact: Contact | None, beneficiary: Beneficiary | None, assignee: str | None):
    if kind == InboxKind.SMS:
        phone, text, received = row.phone, row.text, row.received_at
    else:
        phone = contact.phone
        text = row.topic if kind == InboxKind.CALLBACK else row.text
        received = row.created_at
    return InboxItem(
        kind=kind,
        id=row.id,
        received_at=received,
        phone=phone,
        text=text,
        reference=beneficiary.reference if beneficiary else None,
        full_name=beneficiary.full_name if beneficiary else None,
        district=beneficiary.district if beneficiary else None,
        language=contact.language if contact else None,
        assigned_to_id=row.assigned_to_id,
        assigned_to=assignee,
        handled_at=row.handled_at,
        handled_by=row.handled_by,
    )


def list_inbox(
    session: Session,
    *,
    view: InboxView | str = InboxView.OPEN,
    kinds: Sequence[InboxKind | str] = tuple(InboxKind),
    staff_id: int | None = None,
    districts: Sequence[str] = (),
    limit: int = INBOX_PAGE_SIZE,
) -> list[InboxItem]:
    """Items of `kinds` in `view`: open ones oldest first (they have waited longest), the rest newest first."""
    view = InboxView(view)
    oldest_first = view in (InboxView.OPEN, InboxView.MINE)
    items: list[InboxItem] = []
    for kind in map(_kind, kinds):
        model = _MODELS[kind]
        query = _item_query(kind, districts)
        if view in (InboxView.OPEN, InboxView.MINE):
            query = query.where(model.handled_at.is_(None))
        if view == InboxView.MINE:
            if staff_id is None:
                raise InboxError("'mine' needs the staff member's id")
            query = query.where(model.assigned_to_id == staff_id)
        if view == InboxView.HANDLED:
            query = query.where(model.handled_at.is_not(None))
        received = _received_column(kind)
        query = query.order_by(received.asc() if oldest_first else received.desc(), model.id).limit(limit)
        items.extend(_item(kind, *row) for row in session.execute(query).all())
    items.sort(key=lambda item: item.received_at, reverse=not oldest_first)
    return items[:limit]


def count_open(session: Session, districts: Sequence[str] = ()) -> dict[InboxKind, int]:
    """Open items of each kind, for the inbox's tabs."""
    counts = {}
    for kind in InboxKind:
        model = _MODELS[kind]
        open_items = _item_query(kind, districts).where(model.handled_at.is_(None)).with_only_columns(model.id)
        counts[kind] = session.execute(select(func.count()).select_from(open_items.subquery())).scalar_one()
    return counts


def _load(session: Session, kind: InboxKind | str, item_id: int, districts: Sequence[str]):
    kind = _kind(kind)
    model = _MODELS[kind]
    row = session.execute(_item_query(kind, districts).where(model.id == item_id)).first()
    if row is None:
        raise InboxItemNotFound(f"no {kind} item {item_id}")
    return kind, row


def get_item(session: Session, kind: InboxKind | str, item_id: int, districts: Sequence[str] = ()) -> InboxItem:
    """One item, or `InboxItemNotFound` (also for an item outside `districts`)."""
    kind, row = _load(session, kind, item_id, districts)
    return _item(kind, *row)


def assignable_staff(session: Session) -> list[tuple[int, str]]:
    """(id, e-mail) of every active account that may act on the inbox: officers and admins."""
    rows = session.execute(
        select(StaffUser.id, StaffUser.email, StaffUser.role)
        .where(StaffUser.active.is_(True))
        .order_by(StaffUser.email)
    ).all()
    return [(staff_id, email) for staff_id, email, role in rows if Role(role).rank >= Role.OFFICER.rank]


def assign(session: Session, actor: Actor, kind: InboxKind | str, item_id: int, assignee_id: int | None) -> InboxItem:
    """For `actor` (an officer), give the item to an officer or admin (None: to no one). Does not commit."""
    actor.require_role(Role.OFFICER)
    districts = actor.district_list
    kind, (row, *_rest) = _load(session, kind, item_id, districts)
    assignee = None
    if assignee_id is not None:
        assignee = session.get(StaffUser, assignee_id)
        if assignee is None or not assignee.active or not assignee.has_role(Role.OFFICER):
            raise InboxError("items can be assigned only to active officers and admins")
    row.assigned_to_id = assignee_id
    session.flush()
    actor.audit(session, "inbox.assign", AUDIT_OBJECTS[kind], item_id, assigned_to=assignee.email if assignee else None)
    return get_item(session, kind, item_id, districts)


def mark_handled(
    session: Session, actor: Actor, kind: InboxKind | str, item_id: int, *, now: datetime | None = None
) -> InboxItem:
    """Close the item for `actor` (an officer), saying who; refuses one already handled (someone else was first)."""
    actor.require_role(Role.OFFICER)
    districts = actor.district_list
    kind, (row, *_rest) = _load(session, kind, item_id, districts)
    if row.handled_at is not None:
        raise AlreadyHandledError(f"this item was already handled by {row.handled_by or 'a keyword rule'}")
    row.handled_at = now or utcnow()
    row.handled_by = actor.name
    session.flush()
    actor.audit(session, "inbox.handle", AUDIT_OBJECTS[kind], item_id)
    return get_item(session, kind, item_id, districts)


def check_reply(text: str) -> str:
    """The reply as it will be sent (ends trimmed), or `InboxError` for an empty or overlong one."""
    text = text.strip()
    if not text:
        raise InboxError("the reply is empty")
    if len(text) > REPLY_MAX_CHARS:
        raise InboxError(f"the reply is {len(text)} characters; keep it to {REPLY_MAX_CHARS} (three SMS)")
    return text


def _contact_for(session: Session, kind: InboxKind, row, contact: Contact | None) -> Contact:
    """Whom to answer: the item's contact, or for an SMS from a number we had not met, that number."""
    if contact is not None:
        return contact
    try:
        phone = normalize_phone(row.phone)
    except PhoneNumberError:
        raise InboxError("this number is not a Lesotho or South African mobile; the gateway cannot answer it") from None
    return find_contact(session, phone) or get_or_create_contact(session, phone)


def reply(
    session: Session, actor: Actor, kind: InboxKind | str, item_id: int, text: str, *, handled: bool = False
) -> OutboundMessage:
    """Owe the sender an SMS from `actor` (an officer), and optionally close the item. Does not commit; kick after
    the commit.

    An unassigned item becomes the replier's (when the replier is a staff account), so colleagues see who is on it.
    """
    actor.require_role(Role.OFFICER)
    districts = actor.district_list
    body = check_reply(text)
    kind, (row, contact, *_rest) = _load(session, kind, item_id, districts)
    recipient = _contact_for(session, kind, row, contact)
    message = owe_text(session, recipient, MessageKind.STAFF, body)
    if row.assigned_to_id is None and actor.staff is not None:
        row.assigned_to_id = actor.staff.id
    actor.audit(session, "inbox.reply", AUDIT_OBJECTS[kind], item_id, message_id=message.id, parts=message.parts)
    if handled and row.handled_at is None:
        mark_handled(session, actor, kind, item_id)
    return message


def staff_messages_to(session: Session, phone: str, limit: int = REPLY_HISTORY_SIZE) -> list[OutboundMessage]:
    """The latest staff SMS to `phone`, newest first."""
    return list(
        session.execute(
            select(OutboundMessage)
            .where(OutboundMessage.phone == phone, OutboundMessage.kind == MessageKind.STAFF)
            .order_by(OutboundMessage.id.desc())
            .limit(limit)
        ).scalars()
    )
