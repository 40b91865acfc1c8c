"""Walk-in registration by staff, in the console and through `POST /api/v1/beneficiaries`: the USSD questions and
rules, consent in person with the officer's name, roles and districts, duplicates as on USSD, and a person without a
phone whose grant moves and whose notices are kept unsent; through the real app on both databases and a real Redis.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from rq import Queue
from sqlalchemy import func, select

from menus import UssdEngine
from models.answers import current_year
from models.audit import AuditLog
from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.notices import UnsentNotice
from models.people import Beneficiary, find_beneficiary_by_phone, find_beneficiary_by_reference
from models.reference import is_valid_reference
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from notifications.sms.texts import sms_catalogue
from tests.factories import make_staff, next_phone, register
from tests.gateway.test_auth import bearer, token_for
from tests.gateway.test_console_beneficiaries import CSRF_INPUT, log_in
from tests.menus.conftest import GOOD_ANSWERS, Phone

WALK_IN = {
    "name": "Mpho Letsie",
    "sex": "female",
    "year_of_birth": 1990,
    "district": "Maseru",
    "village": "Ha Thetsane",
    "returned_from": "South Africa",
    "year_of_return": "2020",
    "national_id": "LS778899",
    "household_size": 5,
    "main_need": "farming",
    "language": "st",
    "consent": True,
}
HELD_END = "END Thank you. We need to check some of your details. A programme officer will contact you soon."


def officer(db, role="officer", districts=None, email=None) -> dict:
    email = email or f"{role}@example.org"
    make_staff(db, email, role, districts=districts)
    return bearer(token_for(db, email))


def post(client, headers, **changes):
    body = {**WALK_IN, **changes}
    return client.post("/api/v1/beneficiaries", json={k: v for k, v in body.items() if v is not ...}, headers=headers)


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def stored(db, reference: str) -> Beneficiary:
    with db.session() as session:
        return find_beneficiary_by_reference(session, reference)


# --- the API ---------------------------------------------------------------------------------------------------------


def test_an_officer_registers_a_walk_in_who_gets_the_ussd_confirmation_sms(client, db, redis, settings, emulator):
    phone = next_phone()
    response = post(client, officer(db), phone=f"{phone[4:8]} {phone[8:]}")  # as an officer types it
    assert response.status_code == 201, response.json
    reference = response.json["reference"]
    assert is_valid_reference(reference) and response.headers["Location"] == f"/api/v1/beneficiaries/{reference}"
    assert response.json["phone"] == phone and response.json["consent_channel"] == "in_person"
    assert response.json["consent_recorded_by"] == "officer@example.org" and response.json["registered_via"] == "api"
    assert response.json["returned_from"] == "south_africa" and response.json["national_id"] == "LS778899"
    assert response.json["grant"]["status"] == "registered" and response.json["language"] == "st"
    with db.session() as session:
        [entry] = session.execute(select(AuditLog).where(AuditLog.action == "beneficiary.register")).scalars()
        assert (entry.actor, entry.object_id, entry.details_dict["consent"]) == (
            "officer@example.org",
            reference,
            "in_person",
        )
        assert entry.details_dict["via"] == "api" and "Mpho" not in entry.details
    assert Queue(TRANSACTIONAL_QUEUE, connection=redis).count == 1  # kicked after the commit

    settings = settings.replace(at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0)
    provider = AfricasTalkingProvider.from_settings(settings)
    Dispatcher(settings=settings, db=db, redis=redis, provider=provider).drain(MessagePriority.TRANSACTIONAL)
    [sent] = emulator.state.messages_for(phone)
    assert sent["text"] == sms_catalogue().get(
        MessageKind.REGISTRATION_CONFIRMATION, "st", first_name="Mpho", reference=reference
    )


def test_the_walk_in_confirmation_is_the_one_a_ussd_registration_gets(client, db, settings, redis):
    """The same text, kind and priority for the same person, whichever way they registered."""
    ussd_phone, staff_phone = next_phone(), next_phone()
    engine = UssdEngine(settings=settings, database=db, redis=redis)
    caller = Phone(engine, ussd_phone)
    caller.dial()
    caller.send("1")  # English
    caller.send("1")  # Register
    caller.walk(*GOOD_ANSWERS[:7], "99", *GOOD_ANSWERS[8:])
    assert caller.send("1").startswith("END Thank you, Thabo")
    walk_in = {
        "name": "Thabo Mokoena",
        "sex": "male",
        "year_of_birth": "1985",
        "district": "Maseru",
        "village": "Ha Abia",
        "returned_from": "south_africa",
        "year_of_return": "2020",
        "household_size": "5",
        "main_need": "farming",
        "language": "en",
    }
    response = post(client, officer(db), national_id=..., phone=staff_phone, **walk_in)
    assert response.status_code == 201, response.json
    with db.session() as session:
        rows = session.execute(select(OutboundMessage).order_by(OutboundMessage.id)).scalars().all()
        ussd_ref = find_beneficiary_by_phone(session, ussd_phone).reference
    by_phone = {row.phone: row for row in rows}
    assert set(by_phone) == {ussd_phone, staff_phone}
    ussd, staff = by_phone[ussd_phone], by_phone[staff_phone]
    assert (ussd.kind, ussd.priority) == (staff.kind, staff.priority) == ("registration_confirmation", "transactional")
    assert staff.body == ussd.body.replace(ussd_ref, response.json["reference"])
    assert stored(db, ussd_ref).consent_channel == "ussd" and stored(db, ussd_ref).consent_recorded_by is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("name", "R2 =D2", "letters"),
        ("name", ..., "required"),
        ("sex", "other", "female, male"),
        ("year_of_birth", "19x5", "four digits"),
        ("year_of_birth", current_year() - 10, f"from {current_year() - 100} to {current_year() - 15}"),
        ("district", "Gauteng", "Berea"),
        ("village", "!!", "letters or digits"),
        ("returned_from", "Mars", "south_africa, other"),
        ("year_of_return", 1989, f"from 1990 to {current_year()}"),
        ("year_of_return", 1980, "from 1990"),
        ("national_id", "AB", "5 to 20"),
        ("household_size", 0, "from 1 to 30"),
        ("household_size", "4.5", "from 1 to 30"),
        ("main_need", "money", "business"),
        ("language", "fr", "en, st"),
        ("consent", False, "must agree"),
        ("consent", "true", "must agree"),
        ("phone", "12345", "phone number"),
        ("phone", "+14155550100", "Lesotho and South African"),
    ],
)
def test_each_refused_field_says_why_and_nothing_is_stored(client, db, field, value, reason):
    response = post(client, officer(db), **{field: value})
    assert response.status_code == 400, response.json
    assert list(response.json["fields"]) == [field], response.json
    assert reason in response.json["fields"][field] and response.json["error"].startswith(f"{field}: ")
    assert count(db, Beneficiary) == 0 and count(db, OutboundMessage) == 0


def test_a_year_of_return_before_birth_is_refused_as_on_ussd(client, db):
    response = post(client, officer(db), year_of_birth=1995, year_of_return=1992)
    assert response.status_code == 400
    assert response.json["fields"] == {"year_of_return": "the year of return is before the year of birth"}


def test_several_refused_fields_are_all_named(client, db):
    response = post(client, officer(db), sex="x", household_size=99, consent=...)
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"sex", "household_size", "consent"}
    error = response.json["error"]  # in the order of the form
    assert error.index("sex: ") < error.index("household_size: ") < error.index("consent: ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1, 2], "JSON object"),
        ({**WALK_IN, "reference": "12345678"}, "unknown fields: reference"),
        ({**WALK_IN, "household_size": 2.5}, "household_size: must be a string"),
        ({**WALK_IN, "name": ["Mpho"]}, "name: must be a string"),
    ],
)
def test_a_body_that_is_not_a_registration_is_refused(client, db, body, reason):
    response = client.post("/api/v1/beneficiaries", json=body, headers=officer(db))
    assert response.status_code == 400 and reason in response.json["error"]


def test_registration_needs_a_token_and_an_officer_in_their_districts(client, db):
    assert client.post("/api/v1/beneficiaries", json=WALK_IN).status_code == 401
    viewer = post(client, officer(db, "viewer"))
    assert viewer.status_code == 403 and "officer" in viewer.json["error"]
    berea = officer(db, districts=["Berea"], email="berea@example.org")
    elsewhere = post(client, berea)
    assert elsewhere.status_code == 403 and "Maseru is not one of your districts" in elsewhere.json["error"]
    assert count(db, Beneficiary) == 0
    assert post(client, berea, district="Berea").status_code == 201
    assert post(client, officer(db, "admin"), district="Quthing", national_id="LS000111").status_code == 201


def test_the_same_person_twice_and_a_taken_national_id_are_refused_as_on_ussd(client, db, settings, redis):
    taken_phone = next_phone()
    register(db, taken_phone, national_id="LS445566", full_name="Mpho Letsie", year_of_birth=1990)
    headers = officer(db)
    same_person = post(client, headers, name=" mpho  LETSIE ", phone=taken_phone, national_id=...)
    assert same_person.status_code == 400
    assert same_person.json["error"].startswith("phone: this person (same name and year of birth) is already")
    same_id = post(client, headers, national_id="ls445566")
    assert same_id.status_code == 400 and same_id.json["error"].startswith("national_id: another beneficiary")
    assert count(db, Beneficiary) == 1 and count(db, OutboundMessage) == 0

    # The other way round: an ID a walk-in holds is held for staff when a caller types it on USSD.
    assert post(client, headers, national_id="LS990011").status_code == 201
    caller = Phone(UssdEngine(settings=settings, database=db, redis=redis), next_phone())
    caller.dial()
    caller.send("1")
    caller.send("1")
    caller.walk(*GOOD_ANSWERS[:7], "LS990011", *GOOD_ANSWERS[8:])
    assert caller.send("1") == HELD_END
    assert count(db, Beneficiary) == 2


def test_a_walk_in_joins_the_household_on_a_registered_phone_until_the_phone_is_full(client, db, settings):
    phone = next_phone()
    first, _ = register(db, phone, language="en", full_name="Thabo Letsie")
    headers = officer(db)
    second = post(client, headers, phone=phone, language="st")
    assert second.status_code == 201
    with db.session() as session:
        household = [person.reference for person in find_beneficiary_by_phone(session, phone).contact.beneficiaries]
        [confirmation] = session.execute(select(OutboundMessage)).scalars()
    assert household == [first, second.json["reference"]]
    # The new person's SMS are in their own language; the phone's menu language stays the one its caller chose.
    assert stored(db, second.json["reference"]).language == "st" and confirmation.language == "st"
    assert stored(db, first).language == "en"
    limit = settings.max_beneficiaries_per_phone
    for number in range(limit - 2):
        register(db, phone, full_name=f"Member {'abcdefgh'[number]} Letsie")
    full = post(client, headers, phone=phone, name="Lerato Letsie", national_id=...)
    assert full.status_code == 400
    assert (
        full.json["error"] == f"phone: this number already has {limit} people registered, the most one phone may hold"
    )
    assert count(db, Beneficiary) == limit


def test_a_walk_in_without_a_phone_has_a_grant_that_moves_and_notices_kept_unsent(client, db, redis):
    headers = officer(db)
    response = post(client, headers, phone=None)
    assert response.status_code == 201, response.json
    reference = response.json["reference"]
    assert response.json["phone"] is None and response.json["language"] == "st"
    assert response.json["alerts_on"] is False
    [confirmation] = response.json["unsent_notices"]
    assert confirmation["kind"] == "registration_confirmation" and reference in confirmation["body"]
    assert Queue(TRANSACTIONAL_QUEUE, connection=redis).count == 0  # nothing to send

    for status, extra in (("under_review", {}), ("approved", {"amount": "1500"})):
        moved = client.post(
            f"/api/v1/beneficiaries/{reference}/grant/events", json={"status": status, **extra}, headers=headers
        )
        assert moved.status_code == 201, moved.json
    shown = client.get(f"/api/v1/beneficiaries/{reference}", headers=headers).json
    assert shown["grant"]["status"] == "approved" and shown["messages"] == []
    approved, confirmation = shown["unsent_notices"]
    assert approved["kind"] == "grant_notice" and "M1,500.00" in approved["body"] and approved["language"] == "st"
    assert count(db, OutboundMessage) == 0 and count(db, UnsentNotice) == 2

    listed = client.get("/api/v1/beneficiaries?q=mpho", headers=headers).json
    assert [(item["reference"], item["phone"], item["language"]) for item in listed["items"]] == [
        (reference, None, "st")
    ]


# --- the console ------------------------------------------------------------------------------------------------------


def form(client, **changes) -> dict:
    token = CSRF_INPUT.search(client.get("/beneficiaries/new").get_data(as_text=True)).group(1)
    values = {
        "full_name": "Lineo Mohapi",
        "sex": "female",
        "year_of_birth": "1979",
        "district": "Leribe",
        "village": "Hlotse",
        "returned_from": "other",
        "year_of_return": "2021",
        "national_id": "",
        "household_size": "3",
        "main_need": "skills",
        "language": "en",
        "phone": "",
        "consent": "yes",
        "csrf_token": token,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def test_the_console_form_registers_a_walk_in_without_a_phone(client, db):
    email = log_in(client, db)
    page = client.get("/beneficiaries/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script" not in html
    for name in ("full_name", "sex", "year_of_birth", "district", "village", "national_id", "phone", "consent"):
        assert f'name="{name}"' in html
    assert '<option value="south_africa">South Africa</option>' in html
    response = client.post("/beneficiaries/new", data=form(client))
    assert response.status_code == 302
    reference = re.fullmatch(r"/beneficiaries/(\d+)", response.headers["Location"]).group(1)
    person = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Registered Lineo with reference {reference}" in person
    assert f"given in person to {email}" in person and "none: registered without a phone" in person
    assert "Notices that could not be sent" in person and f"Your reference is {reference}" in person
    beneficiary = stored(db, reference)
    assert (beneficiary.registered_via, beneficiary.consent_channel, beneficiary.consent_recorded_by) == (
        "console",
        "in_person",
        email,
    )
    assert beneficiary.contact_id is None and beneficiary.language == "en" and beneficiary.returned_from == "other"

    # An officer moves the grant from the page; the approval notice appears among the unsent ones.
    token = CSRF_INPUT.search(person).group(1)
    for status, extra in (("under_review", {}), ("approved", {"amount": "900"})):
        moved = client.post(
            f"/beneficiaries/{reference}/grant", data={"status": status, "csrf_token": token, "reason": "ok", **extra}
        )
        assert moved.status_code == 302
    person = client.get(f"/beneficiaries/{reference}").get_data(as_text=True)
    assert 'id="grant-status">approved<' in person and "M900.00" in person
    assert count(db, OutboundMessage) == 0


def test_the_console_form_shows_each_error_beside_its_field_and_keeps_the_answers(client, db):
    log_in(client, db)
    response = client.post(
        "/beneficiaries/new", data=form(client, year_of_birth="1890", phone="999", consent=None, full_name="Lineo M")
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'<span class="error" id="year_of_birth-error">a year from \d{4} to \d{4}</span>', html)
    assert 'id="phone-error">not a' in html and 'id="consent-error">the person must agree' in html
    assert 'aria-describedby="year_of_birth-error"' in html and 'id="village-error"' not in html
    assert 'value="Lineo M"' in html and '<option value="Leribe" selected>' in html
    assert count(db, Beneficiary) == 0


def test_the_console_form_refuses_duplicates_a_full_phone_and_other_districts(client, db, settings):
    register(db, national_id="LS121212")
    log_in(client, db, districts=["Leribe", "Berea"])
    html = client.get("/beneficiaries/new").get_data(as_text=True)
    assert '<option value="Leribe">' in html and '<option value="Berea">' in html and "Maseru" not in html
    taken = client.post("/beneficiaries/new", data=form(client, national_id="LS121212"))
    assert taken.status_code == 400 and 'id="national_id-error">another beneficiary' in taken.get_data(as_text=True)
    elsewhere = client.post("/beneficiaries/new", data=form(client, district="Maseru"))
    assert elsewhere.status_code == 403 and "Maseru is not one of your districts" in elsewhere.get_data(as_text=True)
    assert count(db, Beneficiary) == 1

    # A household phone: a second person is registered on it, the same person again is not, nor one too many.
    phone = next_phone()
    register(db, phone, full_name="Lineo Mohapi", year_of_birth=1979, district="Leribe")
    twice = client.post("/beneficiaries/new", data=form(client, phone=phone, full_name="LINEO mohapi"))
    assert twice.status_code == 400 and 'id="phone-error">this person (same name' in twice.get_data(as_text=True)
    assert client.post("/beneficiaries/new", data=form(client, phone=phone, full_name="Neo Mohapi")).status_code == 302
    for number in range(settings.max_beneficiaries_per_phone - 2):
        register(db, phone, full_name=f"Member {'abcdefgh'[number]} Mohapi")
    full = client.post("/beneficiaries/new", data=form(client, phone=phone, full_name="Lerato Mohapi"))
    html = full.get_data(as_text=True)
    limit = settings.max_beneficiaries_per_phone
    assert full.status_code == 400 and f'id="phone-error">this number already has {limit} people registered' in html
    assert count(db, Beneficiary) == 1 + settings.max_beneficiaries_per_phone


def test_viewers_cannot_open_the_walk_in_form(client, db):
    log_in(client, db, role="viewer")
    assert client.get("/beneficiaries/new").status_code == 403
    assert "Register a walk-in" not in client.get("/beneficiaries").get_data(as_text=True)


def test_the_csv_export_lists_a_person_without_a_phone_with_an_empty_number(client, db):
    log_in(client, db)
    response = client.post("/beneficiaries/new", data=form(client, full_name="Refiloe Nko"))
    reference = response.headers["Location"].rsplit("/", 1)[1]
    exported = client.get("/beneficiaries/export.csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(row["reference"], row["phone"], row["language"], row["alerts_on"]) for row in rows] == [
        (reference, "", "en", "no")
    ]
