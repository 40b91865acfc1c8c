"""The outbox through the dispatcher to the emulator over HTTP, on real Redis and both databases."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models.grants import find_grant_by_reference
from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage, SystemAlert
from models.people import get_or_create_contact
from notifications.casework.grants import change_grant_status
from notifications.sms.delivery import record_delivery_report
from notifications.sms.dispatch import ROUND_MARKER, Dispatcher
from notifications.sms.outbox import owe_text
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.queues import PAUSED_KEY
from tests.factories import next_phone, register


@pytest.fixture
def sms_settings(settings, emulator):
    return settings.replace(
        at_api_base_url=emulator.url,
        at_api_key="test-key",
        at_timeout_seconds=1.0,
        sms_rate_per_second=1000.0,
        sms_batch_size=3,
        sms_retry_backoff_seconds=(0, 0, 0),
        sms_credit_pause_seconds=1,
    )


@pytest.fixture
def dispatcher(sms_settings, db, redis):
    return Dispatcher(
        settings=sms_settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(sms_settings)
    )


def queue_texts(db, texts_by_phone: dict[str, str], priority=MessagePriority.TRANSACTIONAL) -> list[int]:
    with db.session() as session:
        ids = []
        for phone, text in texts_by_phone.items():
            contact = get_or_create_contact(session, phone)
            ids.append(owe_text(session, contact, MessageKind.STAFF, text, priority=priority).id)
        return ids


def statuses(db) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)).all()
        return {status: count for status, count in rows}


def sent_to(emulator) -> list[str]:
    return [message["phone"] for message in emulator.state.snapshot()["messages"]]


def test_a_grant_notice_reaches_the_provider_once_in_the_returnees_language(db, dispatcher, emulator):
    reference, phone = register(db, language="st")
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        change_grant_status(session, grant, "under_review", actor="officer")
        _, notice = change_grant_status(session, grant, "approved", actor="officer", amount=Decimal("1500"))
    assert notice is not None
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (1, False)
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (0, False)
    messages = emulator.state.snapshot()["messages"]
    assert [m["phone"] for m in messages] == [phone]
    assert "M1,500.00" in messages[0]["text"] and "amohetsoe" in messages[0]["text"]
    with db.session() as session:
        row = session.get(OutboundMessage, notice.id)
        assert row.status == MessageStatus.SUBMITTED
        assert row.provider_message_id == messages[0]["id"]
        assert row.attempts == 1


def test_under_review_is_not_notified(db):
    reference, _ = register(db)
    with db.session() as session:
        _, notice = change_grant_status(session, find_grant_by_reference(session, reference), "under_review", actor="o")
    assert notice is None


def test_numbers_with_the_same_text_share_provider_calls_up_to_the_batch_size(db, dispatcher, emulator):
    phones = [next_phone() for _ in range(7)]
    other = next_phone()
    queue_texts(db, dict.fromkeys(phones, "Training on Monday at the council hall."))
    queue_texts(db, {other: "A different text."})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    calls = [request["form"]["to"].split(",") for request in emulator.state.snapshot()["requests"]]
    assert sorted(len(call) for call in calls) == [1, 1, 3, 3]
    assert sorted(sum(calls, [])) == sorted([*phones, other])
    assert statuses(db) == {MessageStatus.SUBMITTED: 8}


def test_provider_errors_are_retried_until_the_provider_recovers_and_nothing_doubles(db, dispatcher, emulator):
    phones = [next_phone() for _ in range(5)]
    queue_texts(db, {phone: f"Notice {index}" for index, phone in enumerate(phones)})
    emulator.state.set_outcomes({"default": "http_500", "times": 3})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    for _ in range(10):
        if statuses(db) == {MessageStatus.SUBMITTED: 5}:
            break
        dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert statuses(db) == {MessageStatus.SUBMITTED: 5}
    assert sorted(sent_to(emulator)) == sorted(phones)
    with db.session() as session:
        attempts = sorted(session.execute(select(OutboundMessage.attempts)).scalars())
    # Three calls answered 500: the provider's trouble, not the messages', so no attempt is spent on it.
    assert attempts == [1, 1, 1, 1, 1]


def test_retries_stop_after_the_backoff_list_and_the_message_fails(db, dispatcher, emulator):
    phone = next_phone()
    queue_texts(db, {phone: "Hello"})
    # Trouble with this one recipient (GatewayError inside a successful answer): the per-message backoff applies.
    emulator.state.set_outcomes({"numbers": {phone: {"outcome": "status_code", "status_code": 501}}})
    for _ in range(6):
        dispatcher.drain(MessagePriority.TRANSACTIONAL)
    with db.session() as session:
        message = session.execute(select(OutboundMessage)).scalar_one()
    assert (message.status, message.failure_reason, message.attempts) == ("failed", "RetriesExhausted", 4)


def test_a_refused_recipient_fails_alone_and_is_not_retried(db, dispatcher, emulator):
    good, bad = next_phone(), next_phone()
    queue_texts(db, {good: "Same text", bad: "Same text"})
    emulator.state.set_outcomes({"numbers": {bad: "invalid_number"}})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    with db.session() as session:
        rows = {m.phone: m for m in session.execute(select(OutboundMessage)).scalars()}
    assert rows[good].status == MessageStatus.SUBMITTED
    assert (rows[bad].status, rows[bad].failure_reason, rows[bad].attempts) == ("rejected", "InvalidPhoneNumber", 1)
    assert sent_to(emulator) == [good]


def test_insufficient_balance_pauses_sending_alerts_staff_and_resumes(db, dispatcher, emulator, redis):
    phones = [next_phone() for _ in range(2)]
    queue_texts(db, {phone: f"Payment day {phone}" for phone in phones})
    emulator.state.set_outcomes({"numbers": {phones[0]: {"outcome": "insufficient_balance", "times": 1}}})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert redis.exists(PAUSED_KEY)
    assert dispatcher.send_round(MessagePriority.TRANSACTIONAL) == 0  # paused: nothing goes out
    with db.session() as session:
        alerts = session.execute(select(SystemAlert.kind)).scalars().all()
    assert alerts == ["sms_no_credit"]
    assert statuses(db) == {MessageStatus.QUEUED: 1, MessageStatus.SUBMITTED: 1}  # the other call went through
    time.sleep(1.1)  # SMS_CREDIT_PAUSE_SECONDS=1 in these settings
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert statuses(db) == {MessageStatus.SUBMITTED: 2}
    assert sorted(sent_to(emulator)) == sorted(phones)


def test_a_hung_provider_call_is_settled_by_its_delivery_report_not_resent(db, dispatcher, emulator, sms_settings):
    phone = next_phone()
    queue_texts(db, {phone: "Your payment is ready."})
    emulator.state.set_outcomes({"default": {"outcome": "hang", "seconds": 2}, "times": 1})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert statuses(db) == {MessageStatus.SUBMITTING: 1}
    time.sleep(1.5)  # the emulator accepted it after the client gave up
    [accepted] = emulator.state.snapshot()["messages"]
    with db.session() as session:
        record_delivery_report(session, accepted["id"], "Success", phone, None)
    dispatcher.settings = sms_settings.replace(sms_claim_timeout_seconds=0)
    assert dispatcher.settle_stuck() == 1
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    with db.session() as session:
        message = session.execute(select(OutboundMessage)).scalar_one()
    assert (message.status, message.provider_message_id) == (MessageStatus.DELIVERED, accepted["id"])
    assert sent_to(emulator) == [phone]


def test_a_mid_call_death_with_no_report_in_the_window_is_sent_again_and_alerted(
    db, dispatcher, sms_settings, emulator
):
    phone = next_phone()
    queue_texts(db, {phone: "Hello"})
    with db.session() as session:  # what a worker leaves behind when it dies during the provider call
        dispatcher._claim(session, list(session.execute(select(OutboundMessage.id)).scalars()), "deadworker")
    dispatcher.settings = sms_settings.replace(sms_claim_timeout_seconds=0)
    time.sleep(0.01)
    assert dispatcher.settle_stuck() == 0  # within the window: wait for a delivery report
    assert statuses(db) == {MessageStatus.SUBMITTING: 1}
    dispatcher.settings = sms_settings.replace(sms_claim_timeout_seconds=0, sms_unknown_outcome_seconds=0)
    assert dispatcher.settle_stuck() == 1
    with db.session() as session:
        message = session.execute(select(OutboundMessage)).scalar_one()
        assert (message.status, message.last_error) == ("queued", "OutcomeUnknown")
        assert session.execute(select(SystemAlert.kind)).scalars().all() == ["sms_outcome_unknown"]
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert sent_to(emulator) == [phone]


def test_the_send_rate_holds_across_dispatchers(db, redis, sms_settings, emulator):
    settings = sms_settings.replace(sms_rate_per_second=20.0, sms_batch_size=1)
    queue_texts(db, {next_phone(): f"Message {index}" for index in range(30)})
    dispatchers = [
        Dispatcher(settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings))
        for _ in range(2)
    ]
    started = time.monotonic()
    while any(d.send_round(MessagePriority.TRANSACTIONAL) for d in dispatchers):
        pass
    elapsed = time.monotonic() - started
    assert len(sent_to(emulator)) == 30
    # 30 messages at 20/s with a burst of 20 take at least (30 - 20) / 20 s, however many senders share the rate.
    assert elapsed >= 0.45


def test_bulk_waits_while_bulk_is_not_allowed_and_transactional_does_not(db, dispatcher, emulator):
    bulk_phone, notice_phone = next_phone(), next_phone()
    queue_texts(db, {bulk_phone: "Campaign"}, priority=MessagePriority.BULK)
    queue_texts(db, {notice_phone: "Notice"})
    dispatcher.bulk_allowed = lambda: False
    assert dispatcher.drain(MessagePriority.BULK) == (0, False)
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (1, False)
    assert sent_to(emulator) == [notice_phone]


def test_rows_claimed_but_never_sent_go_straight_back_to_the_queue(db, dispatcher, sms_settings, emulator):
    phone = next_phone()
    queue_texts(db, {phone: "Hello"})
    with db.session() as session:  # a worker claims a round, writes its record, and dies before the call
        ids = list(session.execute(select(OutboundMessage.id)).scalars())
        dispatcher._claim(session, ids, "diedearly")
    dispatcher._note_started("diedearly", [ROUND_MARKER])
    dispatcher.settings = sms_settings.replace(sms_claim_timeout_seconds=0)
    time.sleep(0.01)
    assert dispatcher.settle_stuck() == 1
    assert statuses(db) == {MessageStatus.QUEUED: 1}
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    assert sent_to(emulator) == [phone]
    with db.session() as session:
        assert session.execute(select(OutboundMessage.attempts)).scalar_one() == 1


def test_a_drain_starts_with_one_batch_per_window_slot_and_grows_to_full_rounds(db, redis, sms_settings, emulator):
    """The first round of a drain claims one batch for each call the window lets out, so the first calls leave after
    a small claim; the rounds after it are deeper. Every round's claimed ids are in Redis under its own token."""
    window = 2
    dispatcher = Dispatcher(
        settings=sms_settings.replace(sms_send_concurrency=window),
        db=db,
        redis=redis,
        provider=AfricasTalkingProvider.from_settings(sms_settings),
    )
    ids = queue_texts(db, {next_phone(): "Clinic day on Friday." for _ in range(60)})
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (60, False)
    dispatcher.close()
    rounds = sorted(
        sorted(int(member) for member in redis.smembers(key) if int(member) != ROUND_MARKER)
        for key in redis.scan_iter("sms:started:*")
    )
    assert sorted(sum(rounds, [])) == sorted(ids)  # every message in exactly one round
    first, *later = rounds
    assert first == sorted(ids)[: window * sms_settings.sms_batch_size]
    assert max(len(round_) for round_ in later) > len(first)
    assert statuses(db) == {MessageStatus.SUBMITTED: 60}
    assert len(sent_to(emulator)) == 60
