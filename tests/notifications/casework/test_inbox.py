"""The staff inbox on real databases: what lands in it, assigning, closing, and SMS replies that really leave."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from models.audit import AuditLog
from models.messages import InboundMessage, MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.people import get_or_create_contact
from models.requests import CallbackRequest, Feedback
from notifications.casework.inbox import (
    REPLY_MAX_CHARS,
    AlreadyHandledError,
    InboxError,
    InboxItemNotFound,
    InboxKind,
    assign,
    assignable_staff,
    count_open,
    get_item,
    list_inbox,
    mark_handled,
    reply,
    staff_messages_to,
)
from notifications.sms.dispatch import Dispatcher
from notifications.sms.inbound import receive_sms
from notifications.sms.number_limits import NumberLimits
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import OPERATOR, make_staff, next_phone, register, staff_actor

_provider_ids = itertools.count(1)


def incoming(db, limits: NumberLimits, phone: str, text: str, served: bool = True) -> int:
    """An SMS arriving through the real inbound rules; returns its id."""
    with db.session() as session:
        inbound, _reply = receive_sms(
            session, limits=limits, provider_id=f"in-{next(_provider_ids)}", phone=phone, text=text, served=served
        )
        return inbound.id


def callback(db, phone: str, topic: str = "grant") -> int:
    """A call-back request as the USSD menu's action writes it."""
    with db.session() as session:
        row = CallbackRequest(contact_id=get_or_create_contact(session, phone).id, topic=topic)
        session.add(row)
        session.flush()
        return row.id


def feedback(db, phone: str, text: str = "The office in Mafeteng was closed on Monday") -> int:
    """A problem report as the USSD menu's action writes it."""
    with db.session() as session:
        row = Feedback(contact_id=get_or_create_contact(session, phone).id, text=text)
        session.add(row)
        session.flush()
        return row.id


def audit(db, action: str) -> list[AuditLog]:
    with db.session() as session:
        return list(session.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


def test_the_inbox_holds_non_keyword_sms_call_backs_and_reports_oldest_first(db, limits):
    _, registered = register(db, full_name="Lineo Thabane", district="Leribe")
    sms_id = incoming(db, limits, registered, "When will the grant be paid?")
    incoming(db, limits, registered, "STOP")  # a keyword: acted on at once, never in the inbox
    callback_id = callback(db, next_phone())
    feedback_id = feedback(db, next_phone())
    with db.session() as session:
        items = list_inbox(session)
        counts = count_open(session)
    assert [(item.kind, item.id) for item in items] == [
        (InboxKind.SMS, sms_id),
        (InboxKind.CALLBACK, callback_id),
        (InboxKind.FEEDBACK, feedback_id),
    ]
    assert (items[0].full_name, items[0].district, items[0].text) == (
        "Lineo Thabane",
        "Leribe",
        "When will the grant be paid?",
    )
    assert items[1].text == "grant" and items[1].reference is None
    assert counts == {InboxKind.SMS: 1, InboxKind.CALLBACK: 1, InboxKind.FEEDBACK: 1}


def test_district_limited_staff_see_their_districts_and_unregistered_numbers(db, limits):
    _, leribe = register(db, district="Leribe")
    _, maseru = register(db, district="Maseru")
    leribe_sms = incoming(db, limits, leribe, "hello from Leribe")
    incoming(db, limits, maseru, "hello from Maseru")
    stranger_sms = incoming(db, limits, next_phone(), "who are you?")
    with db.session() as session:
        seen = {item.id for item in list_inbox(session, kinds=[InboxKind.SMS], districts=["Leribe"])}
        assert seen == {leribe_sms, stranger_sms}
    make_staff(db, "leribe@example.org", "officer", districts="Leribe")
    with db.session() as session, pytest.raises(InboxItemNotFound):
        mark_handled(session, staff_actor(session, "leribe@example.org"), "sms", leribe_sms + 1)


def test_assigning_goes_to_officers_only_and_is_audited(db):
    officer = make_staff(db, "officer@example.org", "officer")
    viewer = make_staff(db, "viewer@example.org", "viewer")
    make_staff(db, "gone@example.org", "officer", active=False)
    make_staff(db, "admin@example.org", "admin")
    item_id = callback(db, next_phone())
    with db.session() as session:
        assert [email for _, email in assignable_staff(session)] == ["admin@example.org", "officer@example.org"]
        admin = staff_actor(session, "admin@example.org")
        item = assign(session, admin, "callback", item_id, officer)
        assert item.assigned_to == "officer@example.org"
        with pytest.raises(InboxError, match="only to active officers"):
            assign(session, admin, "callback", item_id, viewer)
    with db.session() as session:
        mine = list_inbox(session, view="mine", staff_id=officer)
        assert [(item.kind, item.id) for item in mine] == [(InboxKind.CALLBACK, item_id)]
        assign(session, staff_actor(session, "admin@example.org"), "callback", item_id, None)
        assert list_inbox(session, view="mine", staff_id=officer) == []
    entries = audit(db, "inbox.assign")
    assert [(e.actor, e.object_type, e.details_dict["assigned_to"]) for e in entries] == [
        ("admin@example.org", "callback_request", "officer@example.org"),
        ("admin@example.org", "callback_request", None),
    ]


def test_marking_handled_says_who_and_refuses_a_second_time(db):
    make_staff(db, "mpho@example.org", "officer")
    make_staff(db, "thabo@example.org", "officer")
    item_id = feedback(db, next_phone())
    with db.session() as session:
        item = mark_handled(session, staff_actor(session, "mpho@example.org"), InboxKind.FEEDBACK, item_id)
    assert item.handled_by == "mpho@example.org" and not item.is_open
    with pytest.raises(AlreadyHandledError, match="already handled by mpho@example.org"), db.session() as session:
        mark_handled(session, staff_actor(session, "thabo@example.org"), InboxKind.FEEDBACK, item_id)
    with db.session() as session:
        assert list_inbox(session) == []
        assert [item.id for item in list_inbox(session, view="handled")] == [item_id]
    assert [(e.actor, e.object_id) for e in audit(db, "inbox.handle")] == [("mpho@example.org", str(item_id))]


def test_a_reply_is_a_staff_sms_to_the_sender_assigned_to_the_replier_and_audited(db, limits):
    make_staff(db, "officer@example.org", "officer")
    _, phone = register(db, language="st")
    item_id = incoming(db, limits, phone, "Ke kopa thuso")
    with db.session() as session:
        officer = staff_actor(session, "officer@example.org")
        message = reply(session, officer, "sms", item_id, "  Re tla u letsetsa hosane.  ", handled=True)
        message_id = message.id
    with db.session() as session:
        sent = session.get(OutboundMessage, message_id)
        item = get_item(session, "sms", item_id)
    assert (sent.phone, sent.kind, sent.priority, sent.language, sent.body, sent.status) == (
        phone,
        MessageKind.STAFF,
        MessagePriority.TRANSACTIONAL,
        "st",
        "Re tla u letsetsa hosane.",
        MessageStatus.QUEUED,
    )
    assert (item.assigned_to, item.handled_by) == ("officer@example.org", "officer@example.org")
    (entry,) = audit(db, "inbox.reply")
    assert (entry.object_type, entry.details_dict["message_id"]) == ("inbound_message", message_id)


def test_a_reply_to_a_number_never_seen_before_creates_its_contact(db, limits):
    phone = next_phone()
    item_id = incoming(db, limits, phone, "Is this the programme?")
    with db.session() as session:
        assert session.get(InboundMessage, item_id).contact_id is None
        message = reply(session, OPERATOR, "sms", item_id, "Yes. Dial the USSD code to register.")
        assert message.phone == phone and message.contact_id is not None


@pytest.mark.parametrize(
    ("text", "reason"),
    [("   ", "empty"), ("x" * (REPLY_MAX_CHARS + 1), f"keep it to {REPLY_MAX_CHARS}")],
)
def test_empty_and_overlong_replies_are_refused(db, text, reason):
    item_id = callback(db, next_phone())
    with pytest.raises(InboxError, match=reason), db.session() as session:
        reply(session, OPERATOR, "callback", item_id, text)


def test_a_number_outside_the_served_countries_cannot_be_answered(db, limits):
    item_id = incoming(db, limits, "+4420", "hello from abroad", served=False)
    with pytest.raises(InboxError, match="cannot answer"), db.session() as session:
        reply(session, OPERATOR, "sms", item_id, "Hello")
    with db.session() as session:
        assert session.execute(select(OutboundMessage)).first() is None


def test_unknown_kinds_and_ids_are_not_found(db):
    with db.session() as session:
        with pytest.raises(InboxItemNotFound):
            get_item(session, "letters", 1)
        with pytest.raises(InboxItemNotFound):
            get_item(session, "callback", 999)


def test_a_keyword_sms_is_not_an_inbox_item(db, limits):
    item_id = incoming(db, limits, next_phone(), "HELP")
    with pytest.raises(InboxItemNotFound), db.session() as session:
        get_item(session, "sms", item_id)


def test_a_reply_reaches_the_provider_once(db, redis, settings, emulator):
    phone = next_phone()
    item_id = callback(db, phone)
    with db.session() as session:
        reply(session, OPERATOR, "callback", item_id, "We will call you at 10:00.")
    settings = settings.replace(at_api_base_url=emulator.url, at_api_key="k", quiet_hours=None)
    dispatcher = Dispatcher(
        settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings)
    )
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (1, False)
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (0, False)
    received = emulator.state.snapshot()["messages"]
    assert [(m["phone"], m["text"]) for m in received] == [(phone, "We will call you at 10:00.")]
    with db.session() as session:
        assert [m.status for m in staff_messages_to(session, phone)] == [MessageStatus.SUBMITTED]
