"""Corrections by officers, checked by the registration form's own rules, audited with old and new values, and the
move of a registration to a returnee's new number (old number locked out at once, both told)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from menus import UssdEngine
from menus.corrections import (
    CorrectionError,
    CorrectionNotFoundError,
    IdentityCheck,
    correct_beneficiary,
    move_to_new_number,
)
from models.actors import PermissionDeniedError
from models.audit import AuditLog
from models.corrections import masked_details
from models.messages import MessageKind
from models.people import Contact, contact_id, find_beneficiary_by_reference, national_id_taken
from models.requests import Feedback, add_feedback
from models.ussd import draft_key, language_key
from notifications.casework.privacy import erase_person
from notifications.sms.texts import sms_catalogue
from tests.factories import OPERATOR, make_staff, register, staff_actor
from tests.menus.conftest import Phone

NEW_PHONE = "+26662999001"


def _entries(db, action) -> list[dict]:
    with db.session() as session:
        query = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        return [entry.details_dict for entry in session.execute(query).scalars()]


def test_a_correction_is_checked_by_the_registration_rules_and_audited_with_old_and_new(db):
    reference, _ = register(db, full_name="Palesa Mokoena", year_of_birth=1988, year_of_return=1995)
    for changes, reason in (
        ({"full_name": "=HYPERLINK(1)"}, "full_name: Enter your name in letters only."),
        ({"year_of_birth": "2021"}, "year_of_birth: Enter a year from"),  # too young, as on the USSD form
        ({"household_size": "31"}, "household_size: Enter a number from 1 to 30."),
        ({"district": "Gauteng"}, "district: one of"),
        ({"phone": "+26658000000"}, "cannot be corrected here"),
    ):
        with db.session() as session, pytest.raises(CorrectionError, match=reason.replace("(", r"\(")):
            correct_beneficiary(session, OPERATOR, reference, changes)
    # A year of birth after the recorded year of return is refused, though it is a valid year of birth.
    with db.session() as session, pytest.raises(CorrectionError, match="year_of_return: That is before"):
        correct_beneficiary(session, OPERATOR, reference, {"year_of_birth": "2000"})
    with db.session() as session:
        correction = correct_beneficiary(
            session,
            OPERATOR,
            reference,
            {"full_name": " Palesa   Mokoena-Tau ", "sex": "Female", "household_size": 6, "national_id": "ls998877"},
        )
    assert correction.changed == ("full_name", "national_id", "household_size")
    with db.session() as session:
        beneficiary = find_beneficiary_by_reference(session, reference)
        assert (beneficiary.full_name, beneficiary.household_size) == ("Palesa Mokoena-Tau", 6)
        assert beneficiary.national_id == "LS998877" and national_id_taken(session, "LS998877")
    [details] = _entries(db, "beneficiary.correct")
    assert details["changes"] == {
        "full_name": {"old": "Palesa Mokoena", "new": "Palesa Mokoena-Tau"},
        "household_size": {"old": 4, "new": 6},
        "national_id": {"old": None, "new": "*****877"},  # the audit log never holds a readable ID
    }
    shown = masked_details("beneficiary.correct", details)["changes"]
    assert shown["full_name"] == {"old": "P" + "*" * 13, "new": "P" + "*" * 17} and shown["household_size"]["new"] == 6


def test_a_national_id_stays_unique(db):
    register(db, national_id="LS111222")
    reference, _ = register(db)
    with db.session() as session, pytest.raises(CorrectionError, match="another beneficiary holds"):
        correct_beneficiary(session, OPERATOR, reference, {"national_id": "ls111222"})


def test_district_limits_apply_to_the_old_and_the_new_district(db):
    in_maseru, _ = register(db, district="Maseru")
    in_berea, _ = register(db, district="Berea")
    make_staff(db, "maseru@example.org", "officer", districts=["Maseru"])
    make_staff(db, "viewer@example.org", "viewer")
    with db.session() as session:
        officer = staff_actor(session, "maseru@example.org")
        with pytest.raises(CorrectionNotFoundError):
            correct_beneficiary(session, officer, in_berea, {"district": "Maseru"})
        with pytest.raises(CorrectionError, match="not one of your districts"):
            correct_beneficiary(session, officer, in_maseru, {"district": "Berea"})
        with pytest.raises(PermissionDeniedError):
            correct_beneficiary(session, staff_actor(session, "viewer@example.org"), in_maseru, {"sex": "male"})
    with db.session() as session:
        assert find_beneficiary_by_reference(session, in_maseru).district == "Maseru"


def test_erasure_removes_old_names_from_earlier_corrections(db, redis):
    reference, _ = register(db, full_name="Palesa Mokoena", village="Ha Abia")
    with db.session() as session:
        correct_beneficiary(session, OPERATOR, reference, {"full_name": "Palesa Tau", "village": "Ha Thetsane"})
        erase_person(session, redis, OPERATOR, reference, "asked in person")
    [details] = _entries(db, "beneficiary.correct")
    assert details["changes"]["full_name"] == {"old": "[erased]", "new": "[erased]"}
    assert details["changes"]["village"] == {"old": "[erased]", "new": "[erased]"}


def test_a_number_move_checks_the_national_id_and_locks_the_old_number_out_at_once(settings, db, redis):
    reference, old_phone = register(db, national_id="LS445566", full_name="Thabo Mokoena")
    engine = UssdEngine(settings=settings, database=db, redis=redis)
    for check, national_id, reason in (
        (IdentityCheck.REFERENCE_AND_NATIONAL_ID, "LS000000", "does not match"),
        (IdentityCheck.REFERENCE_AND_NATIONAL_ID, "", "does not match"),
        ("by_guessing", "", "check: one of"),
    ):
        with db.session() as session, pytest.raises(CorrectionError, match=reason):
            move_to_new_number(session, redis, OPERATOR, reference, NEW_PHONE, check, national_id=national_id)
    redis.set(draft_key(old_phone), "{}")
    redis.set(language_key(old_phone), "en")
    with db.session() as session:
        move = move_to_new_number(
            session, redis, OPERATOR, reference, "62999001", IdentityCheck.REFERENCE_AND_NATIONAL_ID, " ls445566 "
        )
        notices = [(notice.phone, notice.kind, notice.body) for notice in move.notices]
    catalogue = sms_catalogue()
    assert notices == [
        (old_phone, MessageKind.NUMBER_MOVED, catalogue.get("number_moved.old", "en")),
        (
            NEW_PHONE,
            MessageKind.NUMBER_MOVED,
            catalogue.get("number_moved.new", "en", first_name="Thabo", reference=reference),
        ),
    ]
    assert redis.exists(draft_key(old_phone), language_key(old_phone)) == 0
    old, new = Phone(engine, number=old_phone), Phone(engine, number=NEW_PHONE)
    assert "Rea u amohela" in old.dial()  # a stranger: asked for a language
    old.send("1")
    assert "Enter your full name" in old.send("1")  # not registered: the first question
    new.dial()
    assert reference in new.send("2")
    [details] = _entries(db, "beneficiary.number_move")
    assert details["check"] == "reference_and_national_id"
    assert (details["old_phone"], details["new_phone"]) == (old_phone, NEW_PHONE)
    shown = masked_details("beneficiary.number_move", details)
    assert old_phone not in str(shown) and NEW_PHONE not in str(shown)


def test_a_number_move_refuses_someone_elses_number_and_folds_in_a_bare_contact(db, redis):
    reference, _ = register(db)
    _, taken = register(db)
    with db.session() as session, pytest.raises(CorrectionError, match="another registration"):
        move_to_new_number(session, redis, OPERATOR, reference, taken, IdentityCheck.IN_PERSON)
    # A person registered without an ID is seen in person.
    with db.session() as session, pytest.raises(CorrectionError, match="see them in person"):
        move_to_new_number(session, redis, OPERATOR, reference, NEW_PHONE, IdentityCheck.REFERENCE_AND_NATIONAL_ID)
    with db.session() as session:
        stranger = contact_id(session, NEW_PHONE)
        add_feedback(session, stranger, "I lost my old phone")
        session.get(Contact, stranger).alerts_on = False  # it sent STOP from the new SIM
    with db.session() as session:
        move_to_new_number(session, redis, OPERATOR, reference, NEW_PHONE, IdentityCheck.IN_PERSON)
    with db.session() as session:
        beneficiary = find_beneficiary_by_reference(session, reference)
        assert beneficiary.phone == NEW_PHONE and beneficiary.alerts_on is False
        feedback = session.execute(select(Feedback)).scalar_one()
        assert feedback.contact_id == beneficiary.contact_id
        assert session.get(Contact, stranger) is None
    assert _entries(db, "beneficiary.number_move")[0]["check"] == "in_person"
