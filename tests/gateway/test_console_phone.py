"""The practice phone through the real app on both databases and a real Redis: dial, answer the real menu, see the
SMS it owes; viewers are refused; production dials only from TEST_NUMBERS; the webhook's token never reaches the page.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from config import load_settings
from config.settings import SettingsError
from menus.practice import PRACTICE_NUMBER, SESSION_PREFIX
from models.audit import AuditLog
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary
from tests.factories import PRODUCTION_SECRETS, make_staff
from tests.gateway.test_auth import csrf_from, login

# A full registration through the menu: language, Register, then every question in the contract's order.
REGISTRATION = (
    "1",  # English
    "1",  # Register
    "Palesa Mohapi",
    "1",  # Female
    "1990",
    "3",  # Leribe
    "Hlotse",
    "1",  # South Africa
    "2020",
    "99",  # no national ID
    "4",
    "2",  # Farming
    "1",  # Agree
    "1",  # Confirm
)
TEST_NUMBER = "+26659999001"
REAL_RETURNEE = "+26658000123"
SCREEN = re.compile(r'<div class="screen"[^>]*><pre>(.*?)</pre>', re.S)


def post(client, path, **form):
    return client.post(path, data={**form, "csrf_token": csrf_from(client, "/phone")})


def officer(client, db, role="officer"):
    make_staff(db, f"{role}@example.org", role)
    assert login(client, f"{role}@example.org").status_code == 302


def screen(client) -> str:
    return SCREEN.search(client.get("/phone").get_data(as_text=True)).group(1)


def phone_audit(db) -> list[tuple[str, dict]]:
    with db.session() as session:
        entries = session.execute(select(AuditLog).where(AuditLog.action == "phone.session")).scalars()
        return [(entry.actor, entry.details_dict) for entry in entries]


def test_an_officer_registers_through_the_real_menu_and_sees_the_confirmation_sms(client, db, redis):
    officer(client, db)
    page = client.get("/phone").get_data(as_text=True)
    assert f'value="{PRACTICE_NUMBER}"' in page and "/ 182 characters" in page
    assert post(client, "/phone/dial", number=PRACTICE_NUMBER).status_code == 302
    assert "English" in screen(client) and "Sesotho" in screen(client)
    # Without script the keypad's keys type into the answer on the server.
    post(client, "/phone/send", answer="", key="1")
    assert 'id="answer" name="answer" value="1"' in client.get("/phone").get_data(as_text=True)
    for answer in REGISTRATION:
        assert post(client, "/phone/send", answer=answer, action="send").status_code == 302
    page = client.get("/phone").get_data(as_text=True)
    with db.session() as session:
        reference = session.execute(select(Beneficiary.reference)).scalar_one()
        (message,) = session.execute(select(OutboundMessage)).scalars()
    assert reference in SCREEN.search(page).group(1) and "Session ended." in page and 'id="keypad-form"' not in page
    assert (message.phone, message.kind) == (PRACTICE_NUMBER, MessageKind.REGISTRATION_CONFIRMATION)
    inbox = client.get("/phone/inbox").get_data(as_text=True)
    assert reference in message.body and message.body.replace("'", "&#39;") in inbox and ">queued<" in inbox
    ((actor, details),) = phone_audit(db)
    assert actor == "officer@example.org" and details["phone"] == PRACTICE_NUMBER
    assert details["ussd_session"].startswith(SESSION_PREFIX)


def test_a_hop_after_the_session_ended_is_refused_and_hanging_up_keeps_the_inbox(client, db, redis):
    officer(client, db, "admin")
    assert post(client, "/phone/send", answer="1", action="send").status_code == 409
    post(client, "/phone/dial", number="5800 0999")  # typed the local way
    assert post(client, "/phone/hang-up").status_code == 302
    page = client.get("/phone").get_data(as_text=True)
    assert "SMS to +26658000999" in page and 'id="keypad-form"' not in page
    assert post(client, "/phone/send", answer="1", action="send").status_code == 409
    assert [details["phone"] for _, details in phone_audit(db)] == ["+26658000999"]


def test_viewers_are_refused_every_page_of_the_phone(client, db):
    officer(client, db, "viewer")
    for path in ("/phone", "/phone/inbox"):
        assert client.get(path).status_code == 403
    token = csrf_from(client, "/")
    for path in ("/phone/dial", "/phone/send", "/phone/hang-up"):
        response = client.post(path, data={"csrf_token": token, "number": PRACTICE_NUMBER})
        assert response.status_code == 403, path
    assert phone_audit(db) == []
    assert 'href="/phone"' not in client.get("/").get_data(as_text=True)


def production_client(make_app, **changes):
    app = make_app(app_env="production", **PRODUCTION_SECRETS, **changes)
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # the session cookie is Secure in production
    return client


def test_production_dials_only_from_test_numbers(make_app, db, redis):
    client = production_client(make_app, test_numbers=(TEST_NUMBER,))
    officer(client, db)
    page = client.get("/phone").get_data(as_text=True)
    assert f'value="{TEST_NUMBER}"' in page and PRACTICE_NUMBER not in page
    response = post(client, "/phone/dial", number=REAL_RETURNEE)
    assert response.status_code == 400
    assert f"{REAL_RETURNEE} is not a test number" in response.get_data(as_text=True)
    assert 'id="keypad-form"' not in response.get_data(as_text=True) and phone_audit(db) == []
    assert post(client, "/phone/send", answer="1", action="send").status_code == 409
    assert post(client, "/phone/dial", number=TEST_NUMBER).status_code == 302
    assert "English" in screen(client)
    assert [details["phone"] for _, details in phone_audit(db)] == [TEST_NUMBER]


def test_production_without_test_numbers_dials_nowhere(make_app, db, redis):
    client = production_client(make_app)
    officer(client, db)
    assert 'id="number" name="number" type="tel" value=""' in client.get("/phone").get_data(as_text=True)
    response = post(client, "/phone/dial", number=PRACTICE_NUMBER)
    assert response.status_code == 400 and "needs TEST_NUMBERS" in response.get_data(as_text=True)


def test_the_webhook_token_stays_on_the_server(make_app, db, redis):
    client = make_app(webhook_token="w" * 40).test_client()
    officer(client, db)
    post(client, "/phone/dial", number=PRACTICE_NUMBER)
    page = client.get("/phone").get_data(as_text=True)
    assert "English" in SCREEN.search(page).group(1) and "w" * 40 not in page
    assert client.post("/webhooks/at/ussd", data={"sessionId": "x"}).status_code == 403  # the webhook still wants it


@pytest.mark.parametrize(
    ("raw", "parsed"), [("", ()), ("+26659999001, +26659999002", ("+26659999001", "+26659999002"))]
)
def test_test_numbers_are_read_as_e164(raw, parsed):
    assert load_settings({"TEST_NUMBERS": raw}, app_env="test").test_numbers == parsed


def test_a_test_number_not_in_e164_refuses_to_start():
    with pytest.raises(SettingsError, match="TEST_NUMBERS must be comma-separated E.164"):
        load_settings({"TEST_NUMBERS": "+26659999001,059999002"}, app_env="test")
