"""Cost abuse through SMS and call-backs: one number hammering the USSD menu and the SMS keywords, sequentially and
from many threads at once, through the real webhooks. The outbox (and the call-back list) must not grow past the
limits, and the caller gets a polite screen or nothing."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, update

from menus.texts import menu_catalogue
from menus.tree import COVID_TOPICS
from models.messages import InboundMessage, MessageKind, OutboundMessage
from models.people import Contact, Language
from models.requests import CallbackRequest

USSD = "/webhooks/at/ussd"
INBOUND = "/webhooks/at/sms/inbound"
PHONE = "+26658000001"
OTHER_PHONE = "+26658000002"
COVID, TIPS = "3", str(len(COVID_TOPICS) + 1)
CONTACT, CALLBACK, TOPIC_GRANT = "6", "1", "1"
SEQUENTIAL, CONCURRENT, THREADS = 5, 12, 6


def dial(client, phone: str, *answers: str) -> str:
    """One USSD session from `phone`: the first hop, then each answer (cumulative text); the last screen."""
    session_id = f"ATUid_{uuid.uuid4().hex[:12]}"
    body = ""
    for done in range(len(answers) + 1):
        text = "*".join(answers[:done])
        form = {"sessionId": session_id, "serviceCode": "*123#", "phoneNumber": phone, "text": text}
        response = client.post(USSD, data=form)
        assert response.status_code == 200
        body = response.get_data(as_text=True)
    return body


def hammer(app, call, times: int) -> list:
    """`call(client)` `times` times, sequentially, then `times` * 2 more from THREADS threads at once."""
    results = [call(app.test_client()) for _ in range(times)]
    with ThreadPoolExecutor(THREADS) as pool:
        results += list(pool.map(lambda _: call(app.test_client()), range(CONCURRENT)))
    return results


def count(db, statement) -> int:
    with db.session() as session:
        return session.execute(statement).scalar_one()


def outbox(db, kind: str, phone: str) -> int:
    return count(
        db,
        select(func.count()).select_from(OutboundMessage).filter_by(kind=kind, phone=phone),
    )


def text(key: str) -> str:
    return menu_catalogue().get(key, Language.ENGLISH)


def test_covid_tips_by_sms_at_most_once_a_day_per_number(app, db, redis):
    dial(app.test_client(), PHONE, "1")  # choose English
    screens = hammer(app, lambda client: dial(client, PHONE, COVID, TIPS), SEQUENTIAL)
    assert outbox(db, MessageKind.COVID_TIPS, PHONE) == 1
    assert sum(text("covid.tips_sent") in screen for screen in screens) == 1
    refused = [screen for screen in screens if text("covid.tips_limit") in screen]
    assert len(refused) == len(screens) - 1 and all(screen.startswith("CON ") for screen in refused)
    dial(app.test_client(), OTHER_PHONE, "2")  # Sesotho; another number has its own allowance
    dial(app.test_client(), OTHER_PHONE, COVID, TIPS)
    assert outbox(db, MessageKind.COVID_TIPS, OTHER_PHONE) == 1


def test_the_tips_limit_is_a_setting(make_app, db, redis):
    app = make_app(covid_tips_sms_per_day=3)
    dial(app.test_client(), PHONE, "1")
    hammer(app, lambda client: dial(client, PHONE, COVID, TIPS), SEQUENTIAL)
    assert outbox(db, MessageKind.COVID_TIPS, PHONE) == 3


def test_keyword_replies_at_most_three_an_hour_per_number_and_stop_still_acts(app, db, redis):
    def send(client, word="HELP"):
        form = {"from": PHONE, "to": "12345", "text": word, "id": uuid.uuid4().hex, "date": "2026-11-28 10:00:00"}
        response = client.post(INBOUND, data=form)
        assert response.status_code == 200

    hammer(app, send, SEQUENTIAL)
    send(app.test_client(), "STOP")
    assert outbox(db, MessageKind.KEYWORD_REPLY, PHONE) == 3
    assert count(db, select(func.count()).select_from(InboundMessage)) == SEQUENTIAL + CONCURRENT + 1
    assert count(db, select(Contact.alerts_on).filter_by(phone=PHONE)) is False
    send_other = {"from": OTHER_PHONE, "to": "12345", "text": "THUSO", "id": uuid.uuid4().hex}
    assert app.test_client().post(INBOUND, data=send_other).status_code == 200
    assert outbox(db, MessageKind.KEYWORD_REPLY, OTHER_PHONE) == 1


def test_one_open_call_back_request_per_number(app, db, redis):
    dial(app.test_client(), PHONE, "1")
    screens = hammer(app, lambda client: dial(client, PHONE, CONTACT, CALLBACK, TOPIC_GRANT), SEQUENTIAL)
    requests = select(func.count()).select_from(CallbackRequest)
    assert count(db, requests) == 1
    assert sum(text("contact.callback_thanks") in screen for screen in screens) == 1
    assert sum(text("contact.callback_open") in screen for screen in screens) == len(screens) - 1
    with db.session() as session:  # staff call back and mark it handled: the number may ask again
        session.execute(update(CallbackRequest).values(handled_at=func.now(), handled_by="officer@example.org"))
    assert text("contact.callback_thanks") in dial(app.test_client(), PHONE, CONTACT, CALLBACK, TOPIC_GRANT)
    assert count(db, requests) == 2
