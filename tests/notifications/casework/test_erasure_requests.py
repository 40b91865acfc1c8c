"""Asking by phone for one's data to be deleted: USSD `6 Contact us` and SMS DELETE/HLAKOLA make the same request,
which only an admin's confirmation turns into an erasure; the person then hears by SMS, on the number they had."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from config import load_settings
from menus import UssdEngine
from models.actors import PermissionDeniedError
from models.base import utcnow
from models.messages import MessageKind, MessageStatus, OutboundMessage
from models.people import find_beneficiary_by_reference
from models.requests import ErasureRequest
from models.ussd import draft_key, language_key
from notifications.casework.erasure_requests import (
    ErasureRequestError,
    confirm_erasure_request,
    decline_erasure_request,
    open_erasure_requests,
)
from notifications.casework.privacy import is_erased
from notifications.casework.retention import apply_retention
from notifications.sms.inbound import receive_sms
from notifications.sms.number_limits import NumberLimits
from notifications.sms.texts import sms_catalogue
from tests.factories import OPERATOR, make_staff, register, staff_actor
from tests.menus.conftest import Phone


def _requests(db) -> list[ErasureRequest]:
    with db.session() as session:
        return list(session.execute(select(ErasureRequest).order_by(ErasureRequest.id)).scalars())


def _replies(db, phone) -> list[str]:
    with db.session() as session:
        query = select(OutboundMessage.body).where(OutboundMessage.phone == phone).order_by(OutboundMessage.id)
        return list(session.execute(query).scalars())


def test_ussd_contact_us_asks_for_erasure_once_and_a_stranger_is_told_there_is_nothing(settings, db, redis):
    reference, number = register(db)
    engine = UssdEngine(settings=settings, database=db, redis=redis)
    phone = Phone(engine, number=number)
    phone.dial()
    assert (
        phone.send("6").splitlines()[-2:] == ["3 Delete my data", "0 Back"] or "3 Delete my data" in phone.response.body
    )
    assert "officer will call you" in phone.send("3")
    assert "request was received" in phone.send("1") and phone.response.end
    phone.dial()
    phone.walk("6", "3")
    assert "already asked" in phone.send("1")
    [request] = _requests(db)
    assert request.channel == "ussd" and request.decided_at is None
    stranger = Phone(engine, number="+26658999001")
    stranger.dial()
    stranger.walk("1")  # English
    assert "No registration uses this number" in stranger.walk("6", "3", "1")
    assert len(_requests(db)) == 1
    with db.session() as session:
        assert not is_erased(find_beneficiary_by_reference(session, reference))  # asking erases nothing


def test_sms_delete_and_hlakola_make_the_same_request_answered_in_the_senders_language(db, redis, settings):
    limits = NumberLimits(redis, settings)
    _, english = register(db)
    _, sesotho = register(db, language="st")
    with db.session() as session:
        receive_sms(session, limits=limits, provider_id="d-1", phone=english, text="Delete")
        receive_sms(session, limits=limits, provider_id="d-2", phone=sesotho, text="HLAKOLA.")
        receive_sms(session, limits=limits, provider_id="d-3", phone=english, text="DELETE")
        receive_sms(session, limits=limits, provider_id="d-4", phone="+26658999002", text="delete")
    assert [request.channel for request in _requests(db)] == ["sms", "sms"]
    catalogue = sms_catalogue()
    assert _replies(db, english)[-2:] == [
        catalogue.get("keyword.delete_requested", "en"),
        catalogue.get("keyword.delete_already_open", "en"),
    ]
    assert _replies(db, sesotho)[-1] == catalogue.get("keyword.delete_requested", "st")
    assert _replies(db, "+26658999002") == [catalogue.get("keyword.delete_not_registered", "en")]


def test_sms_delete_over_the_reply_limit_still_records_the_request_without_a_reply(db, redis):
    settings = load_settings({}, app_env="test", keyword_replies_per_hour=1)
    limits = NumberLimits(redis, settings)
    _, phone = register(db)
    with db.session() as session:
        receive_sms(session, limits=limits, provider_id="l-1", phone=phone, text="HELP")
        receive_sms(session, limits=limits, provider_id="l-2", phone=phone, text="DELETE")
    assert len(_requests(db)) == 1
    assert _replies(db, phone) == [sms_catalogue().get("keyword.help", "en")]  # no answer to DELETE


def test_only_an_admin_confirms_and_the_person_is_told_on_the_number_they_had(db, redis):
    reference, phone = register(db, full_name="Mpho Letsie")
    with db.session() as session:
        receive_sms(
            session,
            limits=NumberLimits(redis, load_settings({}, app_env="test")),
            provider_id="c-1",
            phone=phone,
            text="DELETE",
        )
    [request] = _requests(db)
    make_staff(db, "o@example.org", "officer")
    with db.session() as session, pytest.raises(PermissionDeniedError):
        confirm_erasure_request(session, redis, staff_actor(session, "o@example.org"), request.id)
    redis.set(draft_key(phone), "{}")
    redis.set(language_key(phone), "en")
    with db.session() as session:
        assert [item.reference for item in open_erasure_requests(session, OPERATOR)] == [reference]
        notice = confirm_erasure_request(session, redis, OPERATOR, request.id)
        notice_id = notice.id
    with db.session() as session:
        assert is_erased(find_beneficiary_by_reference(session, reference))
        assert open_erasure_requests(session, OPERATOR) == []
        notice = session.get(OutboundMessage, notice_id)
        # Owed after the erasure's "cancel pending SMS": queued, to the real number, with its text.
        assert (notice.status, notice.phone, notice.kind) == (MessageStatus.QUEUED, phone, MessageKind.ERASURE_NOTICE)
        assert notice.body == sms_catalogue().get("erasure_notice", "en")
        # Every other message of the person lost its number and text.
        others = session.execute(select(OutboundMessage).where(OutboundMessage.id != notice_id)).scalars()
        assert all(message.body == "" and message.phone.startswith("erased-") for message in others)
    assert redis.exists(draft_key(phone), language_key(phone)) == 0
    with db.session() as session, pytest.raises(ErasureRequestError):
        confirm_erasure_request(session, redis, OPERATOR, request.id)

    # Once delivered, retention takes the number off the notice at once and, later, its text.
    with db.session() as session:
        notice = session.get(OutboundMessage, notice_id)
        notice.status, notice.final_at = MessageStatus.DELIVERED, utcnow()
    settings = load_settings({}, app_env="test")
    apply_retention(db, settings, utcnow())
    with db.session() as session:
        notice = session.get(OutboundMessage, notice_id)
        assert notice.phone.startswith("erased-") and notice.body != ""
    apply_retention(db, settings, utcnow() + timedelta(days=settings.retention_sms_body_days + 1))
    with db.session() as session:
        assert session.get(OutboundMessage, notice_id).body == ""


def test_declining_keeps_the_person_and_records_why(db, redis):
    reference, phone = register(db)
    engine_settings = load_settings({}, app_env="test")
    with db.session() as session:
        receive_sms(session, limits=NumberLimits(redis, engine_settings), provider_id="x-1", phone=phone, text="DELETE")
    [request] = _requests(db)
    with db.session() as session, pytest.raises(ErasureRequestError):
        decline_erasure_request(session, OPERATOR, request.id, "  ")
    with db.session() as session:
        decline_erasure_request(session, OPERATOR, request.id, "called back: the phone was lent, she wants to stay")
    [request] = _requests(db)
    assert (request.decision, request.decided_by) == ("declined", OPERATOR.name)
    assert request.decision_reason.startswith("called back")
    with db.session() as session:
        assert not is_erased(find_beneficiary_by_reference(session, reference))
