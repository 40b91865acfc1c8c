"""One phone, several people: a household registers its members on one feature phone, and each of them has their
own reference, grant and SMS language; the menu numbers stay those of the posters."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from menus import UssdEngine
from models.grants import Grant, find_grant_by_reference, move_grant
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary, Contact, find_beneficiaries_by_phone, find_contact
from models.registration import HouseholdFullError, register_beneficiary
from models.ussd import draft_key
from tests.factories import answers
from tests.menus.conftest import GOOD_ANSWERS, OTHER_PHONE, PHONE, Phone, register

# GOOD_ANSWERS for another person of the household: another name, and no national ID (99 skips it).
SECOND = ("Thabo Mohapi", *GOOD_ANSWERS[1:7], "99", *GOOD_ANSWERS[8:])
THIRD = ("Lineo Mohapi", "1", *GOOD_ANSWERS[2:7], "99", *GOOD_ANSWERS[8:])
WHOM = (
    "CON This phone already has a registration. Register:\n1 Yourself (see your details)\n"
    "2 Someone in your household\n0 Back 00 Main menu"
)


def confirmations(db) -> list[tuple[str, str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(OutboundMessage)
            .where(OutboundMessage.kind == MessageKind.REGISTRATION_CONFIRMATION)
            .order_by(OutboundMessage.id)
        ).scalars()
        return [(message.phone, message.language, message.body) for message in rows]


def people_on(db, number: str = PHONE) -> list[tuple[str, str, str, str]]:
    """(first name, reference, SMS language, grant status) of everyone registered with `number`."""
    with db.session() as session:
        return [
            (person.first_name, person.reference, person.language, person.grant.status)
            for person in find_beneficiaries_by_phone(session, number)
        ]


def approve(db, reference: str, amount: str = "1500") -> None:
    with db.session() as session:
        move_grant(session, find_grant_by_reference(session, reference), "under_review", actor="test")
        move_grant(
            session, find_grant_by_reference(session, reference), "approved", actor="test", amount=Decimal(amount)
        )


@pytest.mark.usefixtures("english")
def test_a_household_registers_a_second_and_a_third_member_on_one_phone(engine, phone, db):
    first = register(db, name="Palesa Mohapi")
    phone.dial()
    assert phone.send("1") == WHOM
    assert phone.send("2").startswith("CON Registration of a household member. Enter their full name:")
    for answer in SECOND[:-1]:
        phone.send(answer)
    assert phone.response.body.startswith("CON The programme will keep these details to contact this person")
    assert phone.send(SECOND[-1]).startswith("CON Check your details:\nName: Thabo Mohapi")
    done = phone.send("1")
    assert done.startswith("END Thank you, Thabo. You are registered. Your reference is ")

    # The third member is registered by a caller who reads Sesotho (5 Language, 2 Sesotho): their SMS are in it.
    caller = Phone(engine)
    caller.dial()
    caller.walk("5", "2", "1")
    assert caller.response.body.startswith("CON Nomoro ena e se e na le ngoliso. Ngolisa:\n1 Uena")
    assert caller.send("2").startswith("CON Ngoliso ea setho sa lelapa.")
    caller.walk(*THIRD)
    assert caller.send("1").startswith("END Kea leboha, Lineo. U ngolisitsoe.")

    people = people_on(db)
    assert [(name, language, status) for name, _, language, status in people] == [
        ("Palesa", "en", "registered"),
        ("Thabo", "en", "registered"),
        ("Lineo", "st", "registered"),
    ]
    references = [reference for _, reference, _, _ in people]
    assert references[0] == first and len(set(references)) == 3
    assert references[1] in done
    with db.session() as session:
        assert session.query(Contact).count() == 1  # one phone, one set of alerts and menu language
        assert session.query(Grant).count() == 3
    # Each new member's confirmation SMS names them, in their own language, to the shared phone.
    sent = confirmations(db)
    assert [(number, language) for number, language, _ in sent] == [(PHONE, "en"), (PHONE, "st")]
    assert sent[0][2].startswith("Dear Thabo, you are registered") and references[1] in sent[0][2]
    assert "Lineo" in sent[1][2] and references[2] in sent[1][2] and "registered" not in sent[1][2]


@pytest.mark.usefixtures("english")
def test_for_yourself_shows_your_own_details_and_on_a_household_phone_asks_which_one(phone, db):
    only = register(db, name="Palesa Mohapi")
    phone.dial()
    phone.send("1")
    details = phone.send("1")
    assert details.startswith("CON You are already registered.") and only in details
    second = register(db, name="Thabo Mohapi", year_of_birth=1985)
    phone.dial()
    phone.send("1")
    assert phone.send("1") == "CON Which one are you?\n1 Palesa\n2 Thabo\n0 Back 00 Main menu"
    details = phone.send("2")
    assert details.startswith("CON You are already registered.\nRef: " + second)
    assert "Name: Thabo Mohapi" in details


@pytest.mark.usefixtures("english")
def test_the_limit_of_people_on_one_phone_is_refused_politely(settings, db, redis):
    engine = UssdEngine(settings=settings.replace(max_beneficiaries_per_phone=2), database=db, redis=redis)
    register(db, name="Palesa Mohapi")
    phone = Phone(engine)
    phone.dial()
    phone.walk("1", "2", *SECOND)
    assert phone.send("1").startswith("END Thank you, Thabo.")
    phone.dial()
    phone.walk("1", "2")
    assert phone.response.body == (
        "CON This phone already has 2 people registered, the most one phone can have. Others can register at the"
        " district office.\n0 Back 00 Main menu"
    )
    assert phone.send("0") == WHOM  # not a dead end
    assert len(people_on(db)) == 2


@pytest.mark.usefixtures("english")
def test_a_phone_that_fills_up_during_a_registration_is_refused_at_the_end(settings, db, redis):
    engine = UssdEngine(settings=settings.replace(max_beneficiaries_per_phone=2), database=db, redis=redis)
    register(db, name="Palesa Mohapi")
    phone = Phone(engine)
    phone.dial()
    phone.walk("1", "2", *SECOND)
    register(db, name="Lineo Mohapi")  # another session of the phone took the last place meanwhile
    assert phone.send("1") == (
        "END This phone already has 2 people registered, the most one phone can have. Others can register at the"
        " district office."
    )
    assert [name for name, *_ in people_on(db)] == ["Palesa", "Lineo"]
    assert redis.get(draft_key(PHONE)) is None


def test_every_way_of_registering_gets_the_limit_and_the_same_person_rule(db):
    for name in ("Palesa Mohapi", "Thabo Mohapi", "Lineo Mohapi", "Neo Mohapi"):
        register(db, name=name)
    with db.session() as session, pytest.raises(HouseholdFullError):
        register_beneficiary(session, PHONE, answers(full_name="Mpho Mohapi"), "en")
    # The limit is the deployment's: a larger one lets a fifth person register.
    with db.session() as session:
        register_beneficiary(session, PHONE, answers(full_name="Mpho Mohapi"), "st", max_per_phone=5)
    with db.session() as session:
        assert len(find_beneficiaries_by_phone(session, PHONE)) == 5
        assert find_contact(session, PHONE).language == "en"  # the phone's menu language stays the caller's


@pytest.mark.usefixtures("english")
def test_grant_status_on_a_household_phone_asks_whose_by_number_or_reference(phone, db):
    palesa = register(db, name="Palesa Mohapi")
    thabo = register(db, name="Thabo Mohapi", year_of_birth=1985)
    stranger = register(db, OTHER_PHONE, name="Lineo Lebona")
    approve(db, thabo)
    phone.dial()
    whose = "CON Whose grant? Choose, or type the reference:\n1 Palesa\n2 Thabo\n0 Back 00 Main menu"
    assert phone.send("2") == whose
    assert phone.send("2") == f"CON Grant status: Approved\nAmount: M1,500.00\nRef: {thabo}\n0 Back 00 Main menu"
    assert phone.send("0") == whose
    assert phone.send(palesa) == f"CON Grant status: Registered\nRef: {palesa}\n0 Back 00 Main menu"
    phone.send("0")
    # Another phone's reference is not shown: a phone sees only its own people.
    assert phone.send(stranger) == "CON No one on this phone has that reference.\n" + whose[4:]
    assert phone.send("3").startswith("CON Invalid choice.\nWhose grant?")
    assert phone.send("1234 5670").startswith("CON No one on this phone has that reference.")


@pytest.mark.usefixtures("sesotho")
def test_whose_in_sesotho_lists_the_first_names(phone, db):
    register(db, name="Palesa Mohapi", language="st")
    register(db, name="Thabo Mohapi", year_of_birth=1985, language="st")
    phone.dial()
    assert phone.send("2") == (
        "CON Thuso ea chelete ea mang? Khetha, kapa u kenye nomoro ea ngoliso:\n1 Palesa\n2 Thabo\n"
        "0 Morao 00 Lenane le leholo"
    )


@pytest.mark.usefixtures("english")
def test_two_people_of_one_first_name_are_told_apart_by_full_name(phone, db):
    register(db, name="Thabo Mohapi")
    register(db, name="Thabo Lebona")
    phone.dial()
    assert phone.send("2") == (
        "CON Whose grant? Choose, or type the reference:\n1 Thabo Mohapi\n2 Thabo Lebona\n0 Back 00 Main menu"
    )


@pytest.mark.usefixtures("english")
def test_a_phone_with_one_person_keeps_the_poster_numbers(phone, db):
    reference = register(db, name="Palesa Mohapi")
    phone.dial()
    assert phone.send("2") == f"CON Grant status: Registered\nRef: {reference}\n0 Back 00 Main menu"


@pytest.mark.usefixtures("english")
def test_a_household_members_dropped_registration_is_offered_again(engine, phone, db, redis):
    register(db, name="Palesa Mohapi")
    phone.dial()
    phone.walk("1", "2", *SECOND[:3])
    assert json.loads(redis.get(draft_key(PHONE)))["answers"]["household"] is True
    later = Phone(engine)
    assert later.dial().startswith("CON You have an unfinished registration.")
    assert later.send("1").startswith("CON District:")  # the fourth question: the first three are kept
    later.walk(*SECOND[3:])
    assert later.send("1").startswith("END Thank you, Thabo.")
    assert [name for name, *_ in people_on(db)] == ["Palesa", "Thabo"]


@pytest.mark.usefixtures("english")
def test_the_same_person_registered_twice_on_one_phone_gets_their_reference(phone, db):
    thabo = register(db, name="Thabo Mohapi", year_of_birth=1985)
    phone.dial()
    phone.walk("1", "2", "thabo  mohapi", *SECOND[1:])
    assert phone.send("1") == f"END thabo is already registered with this number. The reference is {thabo}."
    with db.session() as session:
        assert session.query(Beneficiary).count() == 1
