"""The Kannel route end to end: the gateway, a real bearerbox and smsbox, and an SMSC that speaks real SMPP."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import select

from config import load_settings
from models.grants import find_grant_by_reference
from models.messages import InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import find_contact, get_or_create_contact
from notifications.casework.grants import change_grant_status
from notifications.sms.dispatch import Dispatcher
from notifications.sms.outbox import owe_text
from notifications.sms.providers.kannel import provider_message_id
from tests.factories import register
from tests.kannel import SENDSMS_PASSWORD, SENDSMS_USER, SHORT_CODE, Kannel, kannel_binaries
from tests.smsc import DATA_CODING_UCS2, Smsc, SmscState

TOKEN = "kannel-webhook-token-for-tests-0123456789"
ROUTES = "vodacom=VODACOM;econet=ECONET;*=africastalking"
# Seconds a test waits for a message to cross Kannel and its report to come back.
WAIT_SECONDS = 30
VODACOM_PHONE, ECONET_PHONE = "+26658123401", "+26662123402"
# A long Sesotho text with characters GSM-7 lacks (š, ’, ê): UCS-2, three parts of 67 characters.
SESOTHO = (
    "Lumela! Thuso ea hau ea M1,500.00 e amohetsoe ’me e tla lefshoa ka M-Pesa bekeng ena. "
    "Haeba u na le potso, letsetsa ofisi ea setereke sa hau kapa u romele THUSO. Re leboha mamello ea hau, "
    "’me re u lakaletsa katleho khoebong ea hau e ncha. Šebelisa chelete ka hloko. Kêlêllo!"
)


@pytest.fixture
def smsc_state():
    return SmscState()


@pytest.fixture
def kannel_stack(tmp_path, smsc_state, make_app, wsgi_server, db, redis, settings):
    """Two SMPP links (VODACOM, ECONET) behind one bearerbox and smsbox, the gateway serving Kannel's callbacks on
    loopback, and a dispatcher routed by SMS_ROUTES: yields (kannel, smscs, dispatcher, routed settings)."""
    kannel_binaries()
    smscs = {
        "VODACOM": Smsc("VODACOM", smsc_state, first_id=5000001).start(),
        "ECONET": Smsc("ECONET", smsc_state, first_id=6000001).start(),
    }
    kannel = Kannel(tmp_path, {name: smsc.port for name, smsc in smscs.items()}, inbound_url="")
    environ = {"SMS_ROUTES": ROUTES}
    for name in smscs:
        environ |= {
            f"KANNEL_{name}_URL": kannel.url,
            f"KANNEL_{name}_USERNAME": SENDSMS_USER,
            f"KANNEL_{name}_PASSWORD": SENDSMS_PASSWORD,
            f"KANNEL_{name}_SMSC": name,
            f"KANNEL_{name}_RATE_PER_SECOND": "20",
            f"KANNEL_{name}_FROM": SHORT_CODE,
        }
    routed = load_settings(
        environ,
        app_env="test",
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        secret_key="test",
        webhook_token=TOKEN,
    )
    gateway = wsgi_server(
        make_app(webhook_token=TOKEN, sms_routes=routed.sms_routes, kannel_routes=routed.kannel_routes)
    )
    routed = routed.replace(kannel_callback_url=gateway)
    kannel.inbound_url = f"{gateway}/webhooks/kannel/sms/inbound?token={TOKEN}"
    kannel.start()
    dispatcher = Dispatcher(settings=routed, db=db, redis=redis, provider=None)
    try:
        yield kannel, smscs, dispatcher, routed
    finally:
        dispatcher.close()
        kannel.stop()
        for smsc in smscs.values():
            smsc.stop()


def wait_for(condition, what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def messages_to(db, phone: str) -> list[OutboundMessage]:
    with db.session() as session:
        return list(
            session.execute(select(OutboundMessage).where(OutboundMessage.phone == phone).order_by(OutboundMessage.id))
            .scalars()
            .all()
        )


def inbound_messages(db) -> list[InboundMessage]:
    with db.session() as session:
        return list(session.execute(select(InboundMessage)).scalars().all())


def test_a_grant_notice_leaves_through_kannel_and_its_receipt_makes_it_delivered(kannel_stack, smsc_state, db):
    _kannel, _smscs, dispatcher, _settings = kannel_stack
    reference, phone = register(db, phone=VODACOM_PHONE)
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        change_grant_status(session, grant, "under_review", actor="officer")
        change_grant_status(session, grant, "approved", actor="officer", amount=1500)

    dispatcher.drain("transactional")

    sent = messages_to(db, phone)
    assert [message.kind for message in sent] == [MessageKind.GRANT_NOTICE]
    assert {(message.route, message.provider_message_id) for message in sent} == {
        ("VODACOM", provider_message_id(message.id)) for message in sent
    }
    wait_for(
        lambda: all(message.status == MessageStatus.DELIVERED for message in messages_to(db, phone)),
        "the notice delivered",
    )
    arrived = sorted((destination, text) for destination, text, _ in smsc_state.messages())
    assert arrived == sorted((phone.lstrip("+"), message.body) for message in sent)


def test_lesotho_numbers_take_the_route_of_their_network(kannel_stack, smsc_state, db):
    _kannel, _smscs, dispatcher, _settings = kannel_stack
    with db.session() as session:
        for phone in (VODACOM_PHONE, ECONET_PHONE):
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Hello {phone}")

    dispatcher.drain("transactional")

    wait_for(lambda: len(smsc_state.submitted) == 2, "two messages at the SMSCs")
    assert sorted((item.smsc_id, item.destination) for item in smsc_state.submitted) == [
        ("ECONET", ECONET_PHONE.lstrip("+")),
        ("VODACOM", VODACOM_PHONE.lstrip("+")),
    ]
    assert [message.route for message in messages_to(db, VODACOM_PHONE) + messages_to(db, ECONET_PHONE)] == [
        "VODACOM",
        "ECONET",
    ]


def test_a_stop_through_the_smsc_turns_alerts_off_and_is_answered(kannel_stack, smsc_state, db):
    _kannel, smscs, dispatcher, _settings = kannel_stack
    smscs["ECONET"].send_mo(ECONET_PHONE, SHORT_CODE, "STOP")

    [stop] = wait_for(lambda: inbound_messages(db), "the STOP to be stored")
    assert (stop.phone, stop.text, stop.keyword, stop.route) == (ECONET_PHONE, "STOP", "stop", "ECONET")
    with db.session() as session:
        assert find_contact(session, ECONET_PHONE).alerts_on is False

    dispatcher.drain("transactional")

    [reply] = messages_to(db, ECONET_PHONE)
    assert (reply.kind, reply.route) == (MessageKind.KEYWORD_REPLY, "ECONET")
    wait_for(lambda: smsc_state.messages(), "the reply at the SMSC")
    [(destination, text, _coding)] = smsc_state.messages()
    assert (destination, text) == (ECONET_PHONE.lstrip("+"), reply.body)


def test_a_long_sesotho_text_arrives_whole_as_ucs2(kannel_stack, smsc_state, db):
    _kannel, _smscs, dispatcher, _settings = kannel_stack
    with db.session() as session:
        owe_text(session, get_or_create_contact(session, VODACOM_PHONE), MessageKind.STAFF, SESOTHO)

    dispatcher.drain("transactional")

    wait_for(lambda: smsc_state.messages(), "the long text reassembled at the SMSC")
    assert len(smsc_state.submitted) > 1  # it really went in parts
    assert smsc_state.messages() == [(VODACOM_PHONE.lstrip("+"), SESOTHO, DATA_CODING_UCS2)]


# Longest a drain waits for the route's circuit breaker, opened by the calls that failed while bearerbox was down,
# to let a probe through.
BREAKER_WAIT_SECONDS = 30.0
# Seconds without a new message at the SMSC after which Kannel is taken to hold nothing more.
QUIET_SECONDS = 3.0


def wait_for_quiet(count, quiet_seconds: float, limit_seconds: float = 60.0) -> None:
    """Return once `count()` has not changed for `quiet_seconds` (and its receipts have had as long to arrive)."""
    deadline = time.monotonic() + limit_seconds
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return
    raise AssertionError(f"the SMSC kept receiving for {limit_seconds:g} s")


def test_bearerbox_killed_mid_send_and_restarted_loses_nothing_and_the_gateway_sends_nothing_twice(
    kannel_stack, smsc_state, db, redis
):
    kannel, _smscs, dispatcher, settings = kannel_stack
    count = 30
    phones = [f"+2665800{index:04d}" for index in range(count)]
    with db.session() as session:
        for phone in phones:
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Notice for {phone[-4:]}")

    dispatcher.send_round("transactional")  # some leave; then bearerbox dies with the rest still to go
    with db.session() as session:
        taken_by_kannel = {
            message.phone.lstrip("+")
            for message in session.execute(select(OutboundMessage)).scalars()
            if message.status == MessageStatus.SUBMITTED
        }
    kannel.kill_bearerbox()
    dispatcher.send_round("transactional")  # smsbox or bearerbox is gone: these wait in the queue for a retry
    kannel.start_bearerbox()
    kannel.restart_smsbox()
    with db.session() as session:  # the backoff has passed
        for message in session.execute(select(OutboundMessage)).scalars():
            message.next_attempt_at = None
    dispatcher.drain("transactional", time_budget=BREAKER_WAIT_SECONDS)
    # Calls whose smsbox died under them (no answer) may or may not have reached Kannel: the sweep settles them by
    # delivery report, or sends them again once no report came. Here the waits are cut to nothing.
    impatient = Dispatcher(
        settings=settings.replace(sms_claim_timeout_seconds=0, sms_unknown_outcome_seconds=0),
        db=db,
        redis=redis,
        provider=None,
    )
    # Before the sweep looks for their reports, let whatever Kannel still holds reach the SMSC and its receipts come
    # back (a loaded machine is slow at both): until the SMSC has heard nothing new for a while.
    wait_for_quiet(lambda: len(smsc_state.messages()), quiet_seconds=QUIET_SECONDS)
    impatient.settle_stuck()
    impatient.drain("transactional", time_budget=BREAKER_WAIT_SECONDS)
    impatient.close()

    wait_for(lambda: len({destination for destination, _, _ in smsc_state.messages()}) == count, "every number")
    time.sleep(2)  # anything Kannel's store would send twice has had time to
    copies = Counter(destination for destination, _, _ in smsc_state.messages())
    assert set(copies) == {phone.lstrip("+") for phone in phones}  # nothing lost
    # Bearerbox's store replays, after a SIGKILL, what it had taken from smsbox but not yet seen acknowledged by the
    # SMSC: Kannel's own at-least-once, which no client of sendsms can close (docs/providers.md). Any second copy
    # must be of such a message; the gateway itself asked for each message once, or again only for a call that got
    # no answer and no report.
    assert {destination for destination, copies_of in copies.items() if copies_of > 1} <= taken_by_kannel
    assert sorted(len(messages_to(db, phone)) for phone in phones) == [1] * count
    statuses = Counter(message.status for phone in phones for message in messages_to(db, phone))
    # Receipts for what the SMSC took just before bearerbox died are lost with it (this SMSC does not re-send them,
    # and dlr-storage = internal keeps Kannel's waiting list in memory): those stay `sent`.
    assert set(statuses) <= {MessageStatus.SUBMITTED, MessageStatus.SENT, MessageStatus.DELIVERED}
