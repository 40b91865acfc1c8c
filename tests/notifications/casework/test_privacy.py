"""A person's data exported and erased: the document holds it all, the erasure leaves nothing personal, the figures
stay the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from models import Base
from models.actors import Actor, PermissionDeniedError, Via
from models.audit import AuditLog
from models.clock import utcnow
from models.grants import find_grant_by_reference
from models.held import HeldRegistration
from models.messages import MessageKind, OutboundMessage
from models.people import Beneficiary, contact_id, find_beneficiary_by_reference, registered_reference
from models.reports import REPORTS, Filters, Period, dashboard, report_table
from models.requests import add_callback_request, add_feedback
from models.staff import find_staff
from models.ussd import draft_key, language_key, record_session_end, session_key
from notifications.casework.grants import change_grant_status
from notifications.casework.privacy import EXPORT_FORMAT, PrivacyError, erase_person, export_person
from notifications.sms.inbound import receive_sms
from notifications.sms.outbox import owe_text
from tests.factories import make_staff, register

OPERATOR = Actor.operator("dpo")
NAME, VILLAGE, NATIONAL_ID = "Mpho Letsie", "Ha Ramabanta", "LS55667788"
FEEDBACK = "my neighbour Mpho Letsie was not paid"
INBOUND = "Hello this is Mpho from Ha Ramabanta"


def _a_full_history(db, redis, limits) -> tuple[str, str]:
    """A beneficiary with a paid grant, SMS in every state, USSD sessions, call-backs, feedback and inbound SMS."""
    reference, phone = register(
        db, full_name=NAME, village=VILLAGE, national_id=NATIONAL_ID, district="Leribe", year_of_birth=1990
    )
    register(db, full_name="Lerato Other", village="Maputsoe", district="Leribe")  # someone else stays as is
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        actor = "officer@example.org"
        change_grant_status(session, grant, "under_review", actor=actor, reason=f"called {NAME}")
        change_grant_status(session, grant, "approved", actor=actor, amount=Decimal("1500"))
        change_grant_status(session, grant, "payment_scheduled", actor=actor, channel="mpesa")
        change_grant_status(session, grant, "paid", actor=actor, payment_reference="MPESA-XYZ123")
        for message, status in zip(
            session.execute(select(OutboundMessage)).scalars(), ("delivered", "failed"), strict=False
        ):
            message.status = status
        owe_text(session, find_beneficiary_by_reference(session, reference).contact, MessageKind.STAFF, f"Dear {NAME}")
        contact = contact_id(session, phone)
        add_callback_request(session, contact, "grant")
        add_feedback(session, contact, FEEDBACK)
        receive_sms(session, provider_id="in-1", phone=phone, text=INBOUND, limits=limits)
        record_session_end(session, session_id="ATUid_1", phone=phone, status="Success", hops_count=4)
        # A second registration from the same phone, held for staff because its ID clashed.
        session.add(
            HeldRegistration(
                contact_id=contact,
                language="en",
                full_name=f"{NAME} Again",
                sex="female",
                year_of_birth=1990,
                district="Leribe",
                village=VILLAGE,
                returned_from="south_africa",
                year_of_return=2020,
                national_id=NATIONAL_ID,
                household_size=3,
                main_need="business",
                consent_at=utcnow(),
            )
        )
        OPERATOR.audit(session, "beneficiaries.export", "beneficiaries", None, q=NAME, phone=phone)
    redis.set(session_key("ATUid_1"), "{}")
    redis.set(draft_key(phone), "{}")
    redis.set(language_key(phone), "en")
    return reference, phone


def _figures(db):
    with db.session() as session:
        today = datetime.now(UTC).date()
        boards = [dashboard(session, today=today, period=period, max_age=0) for period in Period]
        tables = [report_table(session, name, Filters()) for name in REPORTS]
        return boards, [(table.rows, table.totals) for table in tables]


def _dump(db) -> str:
    """Every text value of every table."""
    values = []
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                values.extend(str(value) for value in row if isinstance(value, str))
    return "\n".join(values)


def test_the_export_holds_everything_about_the_person_and_is_audited(db, redis, limits):
    reference, phone = _a_full_history(db, redis, limits)
    with db.session() as session:
        document = json.loads(json.dumps(export_person(session, OPERATOR, reference)))
    assert document["format"] == EXPORT_FORMAT and document["reference"] == reference
    profile = document["profile"]
    assert (profile["full_name"], profile["phone"], profile["national_id"], profile["village"]) == (
        NAME,
        phone,
        NATIONAL_ID,
        VILLAGE,
    )
    grant = document["grant"]
    assert (grant["status"], grant["amount"], grant["payment_reference"]) == ("paid", "1500.00", "MPESA-XYZ123")
    assert [event["to_status"] for event in grant["events"]] == [
        "registered",
        "under_review",
        "approved",
        "payment_scheduled",
        "paid",
    ]
    assert sorted(sms["status"] for sms in document["sms"]) == ["delivered", "failed", "queued", "queued"]
    assert any(sms["body"] == f"Dear {NAME}" for sms in document["sms"])
    assert [item["session_id"] for item in document["ussd_sessions"]] == ["ATUid_1"]
    assert [item["topic"] for item in document["callbacks"]] == ["grant"]
    assert [item["text"] for item in document["feedback"]] == [FEEDBACK]
    assert [item["text"] for item in document["inbound_sms"]] == [INBOUND]
    with db.session() as session:
        entry = session.execute(select(AuditLog).where(AuditLog.action == "data.export")).scalar_one()
        assert (entry.actor, entry.object_id) == ("cli:dpo", reference)


def test_erasure_leaves_nothing_personal_and_the_same_figures(db, redis, limits):
    reference, phone = _a_full_history(db, redis, limits)
    before = _figures(db)
    with db.session() as session:
        erasure = erase_person(session, redis, OPERATOR, reference, "the person asked, request 17")
    assert erasure.messages_cancelled == 2  # the payment notice still queued and the staff message
    assert erasure.redis_keys_deleted == 3
    assert _figures(db) == before

    dump = _dump(db)
    for personal in (phone, phone[1:], NAME, "Mpho", NATIONAL_ID, VILLAGE, "MPESA-XYZ123", FEEDBACK, INBOUND):
        assert personal not in dump, personal
    assert "Lerato Other" in dump and "Maputsoe" in dump  # nobody else was touched
    assert not redis.exists(session_key("ATUid_1"), draft_key(phone), language_key(phone))
    with db.session() as session:
        statuses = session.execute(select(OutboundMessage.status)).scalars().all()
        assert sorted(statuses) == ["cancelled", "cancelled", "delivered", "failed"]
        hashes = select(Beneficiary.national_id_hash).where(Beneficiary.reference == reference)
        assert session.execute(hashes).scalar_one() is None
        entry = session.execute(select(AuditLog).where(AuditLog.action == "data.erase")).scalar_one()
        assert (entry.actor, entry.object_id) == ("cli:dpo", reference)
        assert entry.details_dict["reason"] == "the person asked, request 17"
        # The number that dials again is a stranger: nothing registered, a fresh contact.
        assert registered_reference(session, phone) is None
        assert contact_id(session, phone) != find_beneficiary_by_reference(session, reference).contact_id


def test_an_erased_person_cannot_be_erased_twice_and_a_reason_is_needed(db, redis):
    reference, _ = register(db)
    with db.session() as session, pytest.raises(PrivacyError, match="reason"):
        erase_person(session, redis, OPERATOR, reference, " ")
    with db.session() as session:
        erase_person(session, redis, OPERATOR, reference, "asked")
    with db.session() as session, pytest.raises(PrivacyError, match="already erased"):
        erase_person(session, redis, OPERATOR, reference, "asked")


def test_only_admins_who_see_the_district_may_export_or_erase(db, redis):
    reference, _ = register(db, district="Berea")
    make_staff(db, "officer@example.org", role="officer")
    with db.session() as session:
        officer = Actor.for_staff(find_staff(session, "officer@example.org"), Via.CLI)
        with pytest.raises(PermissionDeniedError):
            export_person(session, officer, reference)
        with pytest.raises(PermissionDeniedError):
            erase_person(session, redis, officer, reference, "asked")
        with pytest.raises(PrivacyError):
            export_person(session, OPERATOR, "99999999")


def test_the_data_commands_export_and_erase(app, db, redis):
    reference, phone = register(db, full_name=NAME)
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["data", "export", reference])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["profile"]["phone"] == phone
    erased = runner.invoke(args=["data", "erase", reference, "--reason", "asked by phone"])
    assert erased.exit_code == 0, erased.output
    assert f"erased {reference}" in erased.output
    again = runner.invoke(args=["data", "export", reference])
    assert json.loads(again.output)["profile"]["full_name"] == "[erased]"
    refused = runner.invoke(args=["data", "erase", "12345674", "--reason", "x"])
    assert refused.exit_code == 1 and "no beneficiary" in refused.output
