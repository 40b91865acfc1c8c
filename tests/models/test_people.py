import threading

import pytest
from sqlalchemy import func, select

from models.grants import Grant, GrantStatus
from models.people import Beneficiary, Contact, find_beneficiaries_by_phone, find_beneficiary_by_phone
from models.phone import PhoneNumberError, UnservedNumberError, mask_national_id, mask_phone, normalize_phone
from models.reference import damm_check_digit, is_valid_reference, new_reference
from models.registration import AlreadyRegisteredError, HouseholdFullError, NationalIdTakenError, register_beneficiary
from tests.factories import answers, next_phone, register


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+26658000001", "+26658000001"),
        ("58000001", "+26658000001"),
        ("266 6200 0001", "+26662000001"),
        ("0027821234567", "+27821234567"),
        ("+27 82 123 4567", "+27821234567"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "hello", "123", "+2665800"])
def test_non_numbers_are_refused(raw):
    with pytest.raises(PhoneNumberError):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["+254712345678", "+27115551234", "+12025550123"])
def test_numbers_outside_the_programme_are_unserved(raw):
    with pytest.raises(UnservedNumberError):
        normalize_phone(raw)


def test_masks_hide_the_middle():
    assert mask_phone("+26658000001") == "+266****0001"
    assert "58000" not in mask_phone("+26658000001")
    assert mask_national_id("012345678") == "******678"


def test_references_carry_a_check_digit_that_catches_typing_mistakes():
    reference = new_reference()
    assert len(reference) == 8 and reference.isdigit() and reference[0] != "0"
    assert is_valid_reference(reference)
    body = reference[:-1]
    assert reference[-1] == damm_check_digit(body)
    for position in range(len(reference)):
        for digit in "0123456789":
            if digit != reference[position]:
                typo = reference[:position] + digit + reference[position + 1 :]
                assert not is_valid_reference(typo), typo
    for position in range(len(reference) - 1):
        a, b = reference[position], reference[position + 1]
        if a != b:
            swapped = reference[:position] + b + a + reference[position + 2 :]
            assert not is_valid_reference(swapped), swapped


def test_registration_writes_beneficiary_contact_and_registered_grant(db):
    reference, phone = register(db, language="st", national_id="LS1234567")
    with db.session() as session:
        beneficiary = find_beneficiary_by_phone(session, phone)
        assert beneficiary.reference == reference
        assert beneficiary.language == "st" and beneficiary.alerts_on
        assert beneficiary.consent_at is not None
        grant = session.execute(select(Grant).where(Grant.beneficiary_id == beneficiary.id)).scalar_one()
        assert grant.status == GrantStatus.REGISTERED


def test_a_phone_holds_a_household_but_each_person_once(db):
    reference, phone = register(db, full_name="Palesa Mokoena")
    # Someone else of the household registers on the same phone: their own reference, grant and SMS language.
    other, _ = register(db, phone, language="st", full_name="Thabo Mokoena")
    assert other != reference
    # The same person again (case and spaces aside, same year of birth) gets their reference, not a second record.
    with pytest.raises(AlreadyRegisteredError) as raised, db.session() as session:
        register_beneficiary(session, phone, answers(full_name=" palesa  MOKOENA "), "en")
    assert raised.value.reference == reference
    with db.session() as session:
        people = find_beneficiaries_by_phone(session, phone)
        assert [(p.reference, p.language, p.grant.status) for p in people] == [
            (reference, "en", "registered"),
            (other, "st", "registered"),
        ]
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_a_national_id_belongs_to_one_beneficiary(db):
    register(db, national_id="LS7654321")
    with pytest.raises(NationalIdTakenError), db.session() as session:
        register_beneficiary(session, next_phone(), answers(national_id="LS7654321"), "en")
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 1
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_a_reference_that_clashes_is_drawn_again(db, monkeypatch):
    taken, _ = register(db)
    draws = iter([taken, taken, "12345671"])
    monkeypatch.setattr("models.registration.new_reference", lambda: next(draws))
    reference, _ = register(db)
    assert reference == "12345671" and is_valid_reference(reference)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 2


def _register_concurrently(db, first_phone, second_phone, *, second_changes=None, max_per_phone=4, **changes):
    """Two registrations whose transactions overlap: the second inserts while the first has not committed yet.

    Only PostgreSQL can overlap them: SQLite's writers take the lock at BEGIN, so the second one's checks would see
    the first one's row and never reach its insert.
    """
    if not db.url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers at BEGIN; the overlap cannot happen there")
    outcome: list = []
    with db.connection() as first:
        reference = register_beneficiary(
            first, first_phone, answers(**changes), "en", max_per_phone=max_per_phone
        ).reference

        def second() -> None:
            try:
                with db.connection() as connection:
                    second_answers = answers(**(second_changes if second_changes is not None else changes))
                    registered = register_beneficiary(
                        connection, second_phone, second_answers, "en", max_per_phone=max_per_phone
                    )
                    outcome.append(registered)
            except Exception as exc:  # the assertion below says which one
                outcome.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second insert should wait for the first transaction"
    thread.join(timeout=10)
    return reference, outcome[0]


def test_the_same_number_registering_in_two_overlapping_sessions_gets_one_beneficiary(db):
    phone = next_phone()
    reference, second = _register_concurrently(db, phone, phone)
    assert isinstance(second, AlreadyRegisteredError) and second.reference == reference
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 1


def test_two_people_taking_a_phones_last_place_at_once_are_one_too_many(db):
    phone = next_phone()
    _, second = _register_concurrently(
        db, phone, phone, max_per_phone=1, full_name="Palesa Mokoena", second_changes={"full_name": "Thabo Mokoena"}
    )
    assert isinstance(second, HouseholdFullError) and second.limit == 1
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 1


def test_one_national_id_in_two_overlapping_registrations_is_refused_to_the_second(db):
    _, second = _register_concurrently(db, next_phone(), next_phone(), national_id="LS5550001")
    assert isinstance(second, NationalIdTakenError)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 1
