"""Delivery reports and incoming SMS through the real webhooks, on real Redis and both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models.messages import DeliveryReport, InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import Contact, get_or_create_contact
from notifications.sms.delivery import apply_kept_reports
from notifications.sms.outbox import owe_text
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.factories import next_phone, register


def submitted_message(db, provider_id: str, phone: str | None = None) -> int:
    phone = phone or next_phone()
    with db.session() as session:
        message = owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, "Hello")
        message.status = MessageStatus.SUBMITTED
        message.provider_message_id = provider_id
        return message.id


def report(client, provider_id, status, **extra):
    form = {"id": provider_id, "status": status, "phoneNumber": "+26658000001", "networkCode": "65101", **extra}
    return client.post("/webhooks/at/sms/delivery", data=form)


def status_of(db, message_id):
    with db.session() as session:
        message = session.get(OutboundMessage, message_id)
        return message.status, message.failure_reason


@pytest.mark.parametrize(
    ("provider_status", "expected"),
    [
        ("Sent", "sent"),
        ("Submitted", "submitted"),
        ("Buffered", "buffered"),
        ("Success", "delivered"),
        ("Failed", "failed"),
        ("AbsentSubscriber", "failed"),
        ("Rejected", "rejected"),
        ("Expired", "expired"),
    ],
)
def test_every_report_status_maps_to_the_lifecycle(client, db, provider_status, expected):
    message_id = submitted_message(db, "ATXid_1")
    assert report(client, "ATXid_1", provider_status).status_code == 200
    assert status_of(db, message_id)[0] == expected


@pytest.mark.parametrize(
    "reason",
    [
        "InsufficientCredit",
        "InvalidLinkId",
        "UserIsInactive",
        "UserInBlackList",
        "UserAccountSuspended",
        "NotNetworkSubscriber",
        "NotNetworkSubcriber",
        "UserNotSubscribedToProduct",
        "UserDoesNotExist",
        "DeliveryFailure",
        "DoNotDisturbRejection",
    ],
)
def test_failure_reasons_are_kept(client, db, reason):
    message_id = submitted_message(db, "ATXid_2")
    report(client, "ATXid_2", "Failed", failureReason=reason)
    assert status_of(db, message_id) == ("failed", reason)


def test_a_final_status_is_never_replaced_and_repeats_change_nothing(client, db):
    message_id = submitted_message(db, "ATXid_3")
    for status in ("Buffered", "Success", "Success", "Buffered", "Sent", "Failed"):
        assert report(client, "ATXid_3", status).status_code == 200
    assert status_of(db, message_id) == ("delivered", None)


def test_out_of_order_non_final_reports_never_move_backwards(client, db):
    message_id = submitted_message(db, "ATXid_4")
    report(client, "ATXid_4", "Buffered")
    report(client, "ATXid_4", "Sent")
    assert status_of(db, message_id)[0] == "buffered"


def test_a_report_before_the_id_is_stored_is_kept_and_applied_later(client, db):
    assert report(client, "ATXid_early", "Success").status_code == 200
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryReport)) == 1
    message_id = submitted_message(db, "ATXid_early")
    with db.session() as session:
        apply_kept_reports(session, [session.get(OutboundMessage, message_id)])
    assert status_of(db, message_id)[0] == "delivered"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryReport)) == 0


def test_unknown_statuses_get_200_and_change_nothing(client, db):
    message_id = submitted_message(db, "ATXid_5")
    assert report(client, "ATXid_5", "Teleported").status_code == 200
    assert status_of(db, message_id)[0] == "submitted"


@pytest.mark.parametrize(("form", "reason"), [({"status": "Success"}, "id"), ({"id": "ATXid_6"}, "status"), ({}, "id")])
def test_malformed_reports_get_400_with_the_reason(client, form, reason):
    response = client.post("/webhooks/at/sms/delivery", data=form)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def inbound(client, text, phone="+26658000001", provider_id=None, **extra):
    form = {
        "from": phone,
        "to": "12345",
        "text": text,
        "id": provider_id or f"in-{text}-{phone}",
        "date": "2021-03-01 10:00:00",
        "networkCode": "65101",
        **extra,
    }
    return client.post("/webhooks/at/sms/inbound", data=form)


def replies(db):
    with db.session() as session:
        return session.execute(
            select(OutboundMessage.phone, OutboundMessage.body).where(OutboundMessage.kind == MessageKind.KEYWORD_REPLY)
        ).all()


@pytest.mark.parametrize(("word", "alerts_on"), [("STOP", False), (" stop ", False), ("Emisa", False)])
def test_stop_keywords_turn_alerts_off_and_answer(client, db, redis, word, alerts_on):
    phone = next_phone()
    assert inbound(client, word, phone).status_code == 200
    with db.session() as session:
        contact = session.execute(select(Contact).where(Contact.phone == phone)).scalar_one()
        assert contact.alerts_on is alerts_on
    [(to, body)] = replies(db)
    assert to == phone
    expected_word = "QALA" if word.strip().upper() == "EMISA" else "START"
    assert expected_word in body
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") == 1  # the reply's send was enqueued


def test_start_turns_alerts_back_on_and_answers_in_the_senders_language(client, db):
    _, phone = register(db, language="st")
    inbound(client, "STOP", phone, provider_id="a")
    inbound(client, "start", phone, provider_id="b")
    with db.session() as session:
        assert session.execute(select(Contact.alerts_on).where(Contact.phone == phone)).scalar_one() is True
    bodies = [body for _, body in replies(db)]
    assert len(bodies) == 2 and all("litemoso" in body.lower() for body in bodies)  # Sesotho, as registered


def test_help_answers_with_help(client, db):
    inbound(client, "thuso", "+26658000009")
    [(_, body)] = replies(db)
    assert "EMISA" in body


def test_anything_else_lands_in_the_inbox_linked_to_the_beneficiary(client, db):
    _, phone = register(db)
    inbound(client, "When is the payment?", phone)
    with db.session() as session:
        message = session.execute(select(InboundMessage)).scalar_one()
        contact_id = session.execute(select(Contact.id).where(Contact.phone == phone)).scalar_one()
    assert (message.text, message.keyword, message.contact_id) == ("When is the payment?", None, contact_id)
    assert replies(db) == []


def test_a_resent_inbound_sms_is_stored_and_acted_on_once(client, db):
    for _ in range(3):
        assert inbound(client, "STOP", "+26658000002", provider_id="same-id").status_code == 200
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert len(replies(db)) == 1


def test_inbound_from_an_unserved_number_is_stored_not_answered(client, db):
    assert inbound(client, "STOP", "+254712345678").status_code == 200
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert replies(db) == []


def test_malformed_inbound_gets_400(client):
    response = client.post("/webhooks/at/sms/inbound", data={"text": "hi", "id": "x"})
    assert response.status_code == 400 and "from" in response.get_data(as_text=True)
