"""Retention: what is past its period goes, in batches; what is not, or must be kept, stays; twice changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from config import load_settings
from models.audit import AuditLog
from models.base import utcnow
from models.clock import as_utc
from models.messages import DeliveryReport, InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import Contact, find_beneficiary_by_reference, save_contact_choice
from models.requests import Feedback, add_feedback
from models.ussd import UssdSessionRecord, record_session_end
from notifications.casework.retention import apply_retention, retention_rules
from notifications.sms.inbound import receive_sms
from notifications.sms.outbox import owe_text
from tests.factories import next_phone, register

SETTINGS = load_settings({}, app_env="test", retention_audit_days=100)


def _history(db, limits) -> dict[str, str]:
    reference, phone = register(db)
    quiet, opted_out, asked = next_phone(), next_phone(), next_phone()
    with db.session() as session:
        contact = find_beneficiary_by_reference(session, reference).contact
        delivered = owe_text(session, contact, MessageKind.STAFF, "Your grant is approved")
        delivered.status, delivered.final_at = MessageStatus.DELIVERED, utcnow()
        owe_text(session, contact, MessageKind.STAFF, "Still waiting to go")
        receive_sms(session, provider_id="in-1", phone=phone, text="Where is my money", limits=limits)
        record_session_end(session, session_id="ATUid_9", phone=phone, status="Success")
        session.add(DeliveryReport(provider_message_id="x-1", phone=phone, status="Success"))
        session.add(AuditLog(actor="cli:x", action="grant.move", object_type="grant", object_id="1"))
        save_contact_choice(session, quiet, language="en")
        save_contact_choice(session, opted_out, language="en", alerts_on=False)
        add_feedback(session, save_contact_choice(session, asked, language="st"), "a problem in my words")
    return {"reference": reference, "quiet": quiet, "opted_out": opted_out, "asked": asked}


def _state(db) -> dict:
    with db.session() as session:

        def count(model, *where):
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

        return {
            "sessions": count(UssdSessionRecord),
            "inbound_texts": count(InboundMessage, InboundMessage.text != ""),
            "bodies": count(OutboundMessage, OutboundMessage.body != ""),
            "reports": count(DeliveryReport),
            "audit": count(AuditLog),
            "feedback_texts": count(Feedback, Feedback.text != ""),
            "contacts": sorted(session.execute(select(Contact.phone)).scalars()),
        }


def test_nothing_young_is_touched(db, limits):
    _history(db, limits)
    before = _state(db)
    assert not any(apply_retention(db, SETTINGS, utcnow()).values())
    assert _state(db) == before


def test_old_data_goes_in_batches_and_a_second_pass_changes_nothing(db, limits):
    people = _history(db, limits)
    for _ in range(3):  # more delivery reports than one batch
        with db.session() as session:
            session.add_all(DeliveryReport(provider_message_id=f"y-{n}", status="Success") for n in range(2))
    later = utcnow() + timedelta(days=400)
    counts = apply_retention(db, SETTINGS, later, batch=2)
    assert counts == {
        "ussd_sessions_deleted": 1,
        "inbound_texts_cleared": 1,
        "sms_bodies_cleared": 1,  # the queued one keeps its text until it has gone
        "erasure_notice_numbers_cleared": 0,
        "delivery_reports_deleted": 7,
        "audit_entries_deleted": 1,
        "unregistered_feedback_cleared": 1,
        "unregistered_contacts_deleted": 1,
    }
    state = _state(db)
    assert (state["sessions"], state["inbound_texts"], state["bodies"], state["reports"]) == (0, 0, 1, 0)
    assert (state["audit"], state["feedback_texts"]) == (0, 0)
    assert people["quiet"] not in state["contacts"]  # never registered, never heard from since: forgotten
    assert people["opted_out"] in state["contacts"]  # a STOP is remembered
    assert people["asked"] in state["contacts"]  # its (emptied) report still points at it
    assert len(state["contacts"]) == 3
    assert not any(apply_retention(db, SETTINGS, later, batch=2).values())
    assert _state(db) == state


# The tables that grow with every campaign, the rule that empties each, and the index its batches read.
GROWING = {
    "ussd_sessions_deleted": "ix_ussd_sessions_recorded_at",
    "delivery_reports_deleted": "ix_delivery_reports_received_at",
    "sms_bodies_cleared": "ix_outbound_messages_final_body",
}
MONTH_AGES_DAYS = (95, 65, 35)  # three months of history; a 50-day period keeps only the youngest
PER_MONTH = 3


def _months_of_history(db, now) -> None:
    with db.session() as session:
        for age in MONTH_AGES_DAYS:
            for n in range(PER_MONTH):
                moment = now - timedelta(days=age, minutes=n)
                session.add(
                    UssdSessionRecord(
                        session_id=f"ATUid_{age}_{n}", phone=next_phone(), status="Success", recorded_at=moment
                    )
                )
                session.add(DeliveryReport(provider_message_id=f"r-{age}-{n}", status="Success", received_at=moment))
                session.add(
                    OutboundMessage(
                        phone=next_phone(),
                        kind=MessageKind.STAFF,
                        language="en",
                        body=f"message {age} {n}",
                        status=MessageStatus.DELIVERED,
                        final_at=moment,
                    )
                )


def _plan(db, statement) -> str:
    """The database's plan for `statement`, as text; on PostgreSQL with sequential scans priced out, so that a tiny
    test table still shows whether an index can serve the query at all."""
    with db.engine.begin() as connection:
        sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
        return "\n".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_whole_months_go_oldest_first_through_an_index_on_their_time(db):
    now = utcnow()
    _months_of_history(db, now)
    settings = load_settings(
        {},
        app_env="test",
        retention_ussd_session_days=50,
        retention_delivery_report_days=50,
        retention_sms_body_days=50,
    )
    postgres = db.engine.dialect.name == "postgresql"
    for rule in retention_rules(settings, now):
        # SQLite, without statistics on a tiny table, reads the bodies rule through the (status, id) index instead:
        # its plan is checked on PostgreSQL, the database of a national programme.
        if rule.name in GROWING and (postgres or rule.name != "sms_bodies_cleared"):
            assert GROWING[rule.name] in _plan(db, rule.ids.limit(2)), rule.name

    counts = apply_retention(db, settings, now, batch=2)
    assert {name: counts[name] for name in GROWING} == dict.fromkeys(GROWING, 2 * PER_MONTH)
    young = now - timedelta(days=MONTH_AGES_DAYS[-1] + 1)
    with db.session() as session:
        assert all(as_utc(at) > young for at in session.execute(select(UssdSessionRecord.recorded_at)).scalars())
        assert all(as_utc(at) > young for at in session.execute(select(DeliveryReport.received_at)).scalars())
        kept = session.execute(select(OutboundMessage.final_at).where(OutboundMessage.body != "")).scalars().all()
        assert len(kept) == PER_MONTH and all(as_utc(at) > young for at in kept)
        assert session.execute(select(func.count()).select_from(OutboundMessage)).scalar_one() == 3 * PER_MONTH
        assert session.execute(select(func.count()).select_from(UssdSessionRecord)).scalar_one() == PER_MONTH
