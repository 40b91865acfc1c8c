"""The menu tree of the USSD menu contract, screen by screen, with what each choice stores."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from menus import UssdEngine, unavailable_response, unserved_number_response
from menus.texts import menu_catalogue
from menus.tree import COVID_TOPICS
from models.grants import GrantStatus
from models.messages import MessageKind, OutboundMessage
from models.people import Contact, find_contact
from models.requests import CallbackRequest, Feedback
from notifications.sms.encoding import gsm7_length, is_gsm7
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.menus.conftest import PHONE, Phone, move, register

MAIN_MENU_LINES = (
    "1 Register",
    "2 Grant status",
    "3 COVID-19 information",
    "4 SMS alerts (stop / start)",
    "5 Language",
    "6 Contact us",
)


def contact(db, number: str = PHONE) -> Contact | None:
    with db.session() as session:
        return find_contact(session, number)


def test_first_dial_without_a_contact_asks_for_the_language_and_stores_it(phone, db):
    body = phone.dial()
    assert body.startswith("CON ")
    assert "1 English\n2 Sesotho" in body
    assert contact(db) is None

    body = phone.send("2")
    assert body.startswith("CON Thuso ho ba khutlileng\n1 Ingolise\n2 Boemo ba thuso ea chelete")
    assert contact(db).language == "st"


def test_a_contact_without_language_is_asked_too(phone, db):
    with db.session() as session:
        session.add(Contact(phone=PHONE, language=None))
    assert "1 English\n2 Sesotho" in phone.dial()
    phone.send("1")
    assert contact(db).language == "en"


@pytest.mark.usefixtures("english")
def test_a_known_language_goes_straight_to_the_main_menu(phone):
    body = phone.dial()
    assert body == "CON Returnee support\n" + "\n".join(MAIN_MENU_LINES)


@pytest.mark.usefixtures("english")
def test_language_menu_changes_the_language_of_the_next_screens(phone, db):
    phone.dial()
    body = phone.send("5")
    assert "1 English\n2 Sesotho" in body and "0 Back 00 Main menu" in body
    body = phone.send("2")
    assert body.startswith("CON Thuso ho ba khutlileng")
    assert contact(db).language == "st"
    assert "Litaba tsa COVID-19:" in phone.send("3")


@pytest.mark.usefixtures("english")
def test_alerts_show_the_current_choice_and_turn_off_then_on(phone, db):
    phone.dial()
    body = phone.send("4")
    assert "SMS alerts are ON." in body and "1 Turn off" in body
    body = phone.send("1")
    assert "now off" in body and body.startswith("CON ")
    assert contact(db).alerts_on is False

    phone.send("00")
    body = phone.send("4")
    assert "SMS alerts are OFF." in body and "1 Turn on" in body
    phone.send("1")
    assert contact(db).alerts_on is True


@pytest.mark.usefixtures("english")
def test_covid_menu_has_five_topics_and_the_sms_option(phone):
    phone.dial()
    body = phone.send("3")
    for line in ("1 Prevention", "2 Symptoms", "3 Testing", "4 Vaccination", "5 Where to get help", "6 Send me tips"):
        assert line in body


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize("topic", ["1", "2", "3", "4", "5"])
def test_each_covid_topic_is_a_long_text_read_page_by_page(phone, engine, topic):
    phone.dial()
    phone.send("3")
    pages = [phone.send(topic)]
    while "98 More" in pages[-1]:
        pages.append(phone.send("98"))
    assert len(pages) >= 2
    assert all(len(page) <= engine.settings.ussd_max_chars for page in pages)
    words = " ".join(page.removeprefix("CON ") for page in pages).split()
    full = menu_catalogue().get(f"covid.{COVID_TOPICS[int(topic) - 1]}_text", "en")
    for word in full.split():
        assert word in words  # nothing of the text is lost between pages


@pytest.mark.usefixtures("english")
def test_covid_tips_sms_is_owed_once_per_session(phone, db, redis):
    phone.dial()
    phone.send("3")
    assert "We will send you COVID-19 tips by SMS" in phone.send("6")
    phone.send("0")
    assert "already on their way" in phone.send("6")
    with db.session() as session:
        messages = session.execute(select(OutboundMessage)).scalars().all()
    assert [(m.kind, m.phone, m.language) for m in messages] == [(MessageKind.COVID_TIPS, PHONE, "en")]
    assert messages[0].body.startswith("COVID-19: wash your hands")
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") == 1


@pytest.mark.usefixtures("english")
def test_call_back_request_is_stored_with_its_topic(phone, db):
    phone.dial()
    assert "1 Request a call back\n2 Report a problem" in phone.send("6")
    assert "1 Grant\n2 Registration\n3 Other" in phone.send("1")
    body = phone.send("2")
    assert body.startswith("END Thank you.")
    with db.session() as session:
        requests = session.execute(select(CallbackRequest)).scalars().all()
        assert [(r.topic, r.contact_id) for r in requests] == [("registration", find_contact(session, PHONE).id)]


@pytest.mark.usefixtures("english")
def test_problem_report_keeps_the_callers_words(phone, db):
    phone.dial()
    phone.send("6")
    assert "Type the problem" in phone.send("2")
    body = phone.send("My grant was paid to * the wrong M-Pesa number")
    assert body.startswith("END Thank you.")
    with db.session() as session:
        texts = session.execute(select(Feedback.text)).scalars().all()
    assert texts == ["My grant was paid to * the wrong M-Pesa number"]


@pytest.mark.usefixtures("english")
def test_problem_report_that_is_empty_is_asked_again(phone, db):
    phone.dial()
    phone.send("6")
    phone.send("2")
    body = phone.send(" ")
    assert body.startswith("CON Please type a few words.\nType the problem")
    with db.session() as session:
        assert session.execute(select(Feedback)).first() is None


@pytest.mark.usefixtures("english")
def test_grant_status_of_an_unregistered_number_offers_to_register(phone):
    phone.dial()
    body = phone.send("2")
    assert "You are not registered yet." in body and "1 Register now" in body
    assert phone.send("1").startswith("CON Registration. Enter your full name:")


@pytest.mark.usefixtures("english")
def test_grant_status_shows_status_amount_and_channel(phone, db):
    reference = register(db)
    move(db, PHONE, "under_review", "approved", "payment_scheduled", amount="1500", channel="mpesa")
    phone.dial()
    body = phone.send("2")
    assert "Grant status: Payment scheduled" in body
    assert "Amount: M1,500.00" in body
    assert "Paid by: M-Pesa" in body
    assert reference in body


@pytest.mark.usefixtures("sesotho")
def test_grant_status_is_in_the_callers_language(phone, db):
    register(db, language="st")
    move(db, PHONE, "under_review")
    phone.dial()
    body = phone.send("2")
    assert "Boemo ba thuso: E ntse e hlahlojoa" in body
    assert "Amount" not in body and "Chelete:" not in body  # no amount yet


@pytest.mark.parametrize("language", ["en", "st"])
def test_every_grant_status_has_a_name_in_both_catalogues(language):
    catalogue = menu_catalogue()
    names = {status: catalogue.get(f"grant_status.{status}", language) for status in GrantStatus}
    assert all(names.values()) and len(set(names.values())) == len(GrantStatus)
    english = {status: catalogue.get(f"grant_status.{status}", "en") for status in GrantStatus}
    if language == "st":
        assert names != english


@pytest.mark.usefixtures("english")
def test_a_registered_number_gets_its_details_not_a_second_registration(phone, db):
    reference = register(db, name="Palesa Mohapi")
    phone.dial()
    assert phone.send("1") == (
        "CON This phone already has a registration. Register:\n1 Yourself (see your details)\n"
        "2 Someone in your household\n0 Back 00 Main menu"
    )
    body = phone.send("1")
    assert "already registered" in body
    assert reference in body and "Palesa Mohapi" in body and "Leribe" in body and "Grant: Registered" in body
    assert "0 Back 00 Main menu" in body


def test_unavailable_response_is_a_short_bilingual_end_screen():
    response = unavailable_response()
    assert response.end is True
    assert response.body.startswith("END ")
    assert is_gsm7(response.body) and gsm7_length(response.body) <= 160
    assert "try again" in response.body and "leka hape" in response.body


def test_unserved_number_response_is_a_short_bilingual_end_screen():
    response = unserved_number_response()
    assert response.end is True and response.body.startswith("END ")
    assert is_gsm7(response.body) and gsm7_length(response.body) <= 160
    assert "Lesotho and South African mobile" in response.body and "Lesotho le Afrika Boroa" in response.body


def test_engine_is_built_from_settings_database_and_redis(settings, db, redis):
    engine = UssdEngine(settings=settings, database=db, redis=redis)
    assert Phone(engine).dial().startswith("CON ")
