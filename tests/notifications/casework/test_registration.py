"""The one registration (`register_beneficiary_for`) and everything that meets a person registered without a phone:
grant notices, campaigns, data export and erasure, a phone given later, and the USSD path through the same
function; on both databases with a real Redis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from menus import UssdEngine
from menus.corrections import IdentityCheck, move_to_new_number
from models.actors import Actor, PermissionDeniedError
from models.audit import AuditLog
from models.campaigns import Audience
from models.corrections import ERASED
from models.grants import GrantRules, find_grant_by_reference
from models.messages import MessageKind, OutboundMessage
from models.notices import UnsentNotice
from models.people import ConsentChannel, find_beneficiary_by_phone, find_beneficiary_by_reference
from models.search import BeneficiaryFilters, search_beneficiaries
from notifications.campaigns.fanout import run_fanout
from notifications.campaigns.lifecycle import create_campaign, send_campaign
from notifications.casework.grants import move_grant_for
from notifications.casework.privacy import PrivacyError, erase_person, export_person, is_erased
from notifications.casework.registration import register_beneficiary_for
from tests.factories import OPERATOR, answers, make_staff, next_phone, register, staff_actor
from tests.menus.conftest import GOOD_ANSWERS, Phone

RULES = GrantRules(max_amount=Decimal("10000"), four_eyes=False)


def walk_in(db, phone=None, language="st", email="officer@example.org", **changes) -> str:
    """Register a walk-in as the officer `email` would; returns the reference."""
    with db.session() as session:
        registration = register_beneficiary_for(
            session,
            staff_actor(session, email),
            answers(**changes),
            phone=phone,
            language=language,
            consent=ConsentChannel.IN_PERSON,
        )
        return registration.reference


@pytest.fixture
def officer(db) -> str:
    make_staff(db, "officer@example.org", "officer")
    return "officer@example.org"


def count(db, model, *conditions) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def messages_of(db, campaign_id: int) -> list[OutboundMessage]:
    with db.session() as session:
        return (
            session.execute(select(OutboundMessage).where(OutboundMessage.campaign_id == campaign_id)).scalars().all()
        )


def approve(db, reference: str, email: str = "officer@example.org"):
    with db.session() as session:
        actor = staff_actor(session, email)
        move_grant_for(session, actor, reference, "under_review", rules=RULES)
        _, notice = move_grant_for(session, actor, reference, "approved", rules=RULES, amount=Decimal("1200"))
        return notice


@pytest.mark.usefixtures("officer")
def test_a_grant_without_a_phone_moves_and_its_notice_is_kept_unsent_never_queued(db):
    reference = walk_in(db, full_name="Nthabiseng Mofolo")
    assert approve(db, reference) is None  # nothing to kick
    with db.session() as session:
        assert find_grant_by_reference(session, reference).status == "approved"
        notices = session.execute(select(UnsentNotice).order_by(UnsentNotice.id)).scalars().all()
    assert [(n.kind, n.language, n.reason) for n in notices] == [
        ("registration_confirmation", "st", "no_phone"),
        ("grant_notice", "st", "no_phone"),
    ]
    assert "Nthabiseng" in notices[1].body and "M1,200.00" in notices[1].body
    assert count(db, OutboundMessage) == 0


@pytest.mark.usefixtures("officer")
def test_a_person_without_a_phone_is_found_but_left_out_of_campaigns(db, redis):
    with_phone, _ = register(db)
    without = walk_in(db)
    with db.session() as session:
        staff = staff_actor(session, "officer@example.org").staff
        page = search_beneficiaries(session, staff, BeneficiaryFilters())
        assert {(row.reference, row.phone is None, row.alerts_on) for row in page.items} == {
            (with_phone, False, True),
            (without, True, False),
        }
        campaign = create_campaign(
            session,
            name="Training",
            text_en="Hi {first_name}",
            text_st="Lumela {first_name}",
            audience=Audience(),
            created_by="officer@example.org",
        )
        send_campaign(session, campaign)
        campaign_id = campaign.id
    assert run_fanout(db, redis, campaign_id) == 1
    [message] = messages_of(db, campaign_id)
    with db.session() as session:
        assert message.contact_id == find_beneficiary_by_reference(session, with_phone).contact_id


def test_the_export_and_erasure_of_a_person_without_a_phone(db, redis):
    make_staff(db, "admin@example.org", "admin")
    reference = walk_in(db, email="admin@example.org", full_name="Limpho Sekhonyana", national_id="LS313131")
    with db.session() as session:
        actor = staff_actor(session, "admin@example.org")
        document = export_person(session, actor, reference)
    assert document["profile"]["phone"] is None and document["profile"]["language"] == "st"
    assert document["profile"]["consent_channel"] == "in_person" and document["sms"] == []
    [confirmation] = document["unsent_notices"]
    assert "Limpho" in confirmation["body"] and confirmation["kind"] == "registration_confirmation"

    with db.session() as session:
        erasure = erase_person(session, redis, staff_actor(session, "admin@example.org"), reference, "asked in person")
        assert (erasure.messages_cancelled, erasure.messages_cleared, erasure.redis_keys_deleted) == (0, 0, 0)
    with db.session() as session:
        person = find_beneficiary_by_reference(session, reference)
        assert is_erased(person) and person.full_name == ERASED and person.national_id is None
        assert [notice.body for notice in session.execute(select(UnsentNotice)).scalars()] == [""]
        assert "Limpho" not in "".join(entry.details for entry in session.execute(select(AuditLog)).scalars())
        with pytest.raises(PrivacyError, match="already erased"):
            erase_person(session, redis, staff_actor(session, "admin@example.org"), reference, "again")


@pytest.mark.usefixtures("officer")
def test_a_phone_given_later_carries_the_language_and_the_next_notice_is_an_sms(db, redis):
    reference = walk_in(db)
    phone = next_phone()
    with db.session() as session:
        move = move_to_new_number(
            session, redis, staff_actor(session, "officer@example.org"), reference, phone, IdentityCheck.IN_PERSON
        )
    [welcome] = move.notices
    assert welcome.phone == phone and welcome.language == "st" and reference in welcome.body
    notice = approve(db, reference)
    assert notice is not None and notice.phone == phone and notice.language == "st"
    with db.session() as session:
        person = find_beneficiary_by_phone(session, phone)
        assert person.reference == reference and person.own_language == "st" and person.language == "st"
    assert count(db, UnsentNotice) == 1  # the confirmation stays as it was


def test_viewers_and_officers_of_other_districts_cannot_register(db):
    make_staff(db, "viewer@example.org", "viewer")
    make_staff(db, "berea@example.org", "officer", districts=["Berea"])
    with pytest.raises(PermissionDeniedError, match="officer"):
        walk_in(db, email="viewer@example.org")
    with pytest.raises(PermissionDeniedError, match="Maseru is not one of your districts"):
        walk_in(db, email="berea@example.org", district="Maseru")
    assert walk_in(db, email="berea@example.org", district="Berea")
    with db.session() as session:  # the operator at the server's terminal has the server's authority
        registration = register_beneficiary_for(
            session, OPERATOR, answers(), phone=None, language="en", consent=ConsentChannel.IN_PERSON
        )
        assert find_beneficiary_by_reference(session, registration.reference).consent_recorded_by == "cli:tester"


def test_a_ussd_registration_goes_through_the_same_function_and_is_audited_as_the_returnee(db, redis, settings):
    phone = next_phone()
    caller = Phone(UssdEngine(settings=settings, database=db, redis=redis), phone)
    caller.dial()
    caller.send("2")  # Sesotho
    caller.send("1")
    caller.walk(*GOOD_ANSWERS)
    assert caller.send("1").startswith("END ")
    with db.session() as session:
        person = find_beneficiary_by_phone(session, phone)
        [entry] = session.execute(select(AuditLog).where(AuditLog.action == "beneficiary.register")).scalars()
        [confirmation] = session.execute(select(OutboundMessage)).scalars()
    assert (person.consent_channel, person.consent_recorded_by, person.registered_via) == ("ussd", None, "ussd")
    assert (entry.actor, entry.object_id, entry.details_dict) == (
        Actor.returnee().name,
        person.reference,
        {"consent": "ussd", "district": "Maseru", "has_phone": True, "via": "ussd"},
    )
    assert confirmation.kind == MessageKind.REGISTRATION_CONFIRMATION and confirmation.language == "st"
    assert person.own_language == "st" and person.language == "st"
