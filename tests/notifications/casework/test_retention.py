"""Retention: what is past its period goes, in batches; what is not, or must be kept, stays; twice changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from config import load_settings
from models.audit import AuditLog
from models.base import utcnow
from models.messages import DeliveryReport, InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import Contact, find_beneficiary_by_reference, save_contact_choice
from models.requests import Feedback, add_feedback
from models.ussd import UssdSessionRecord, record_session_end
from notifications.casework.retention import apply_retention
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
