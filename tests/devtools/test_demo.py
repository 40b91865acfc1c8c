"""The demo seeder on both databases: personal data stored as production stores it, histories, a second run."""

from __future__ import annotations

from sqlalchemy import func, select, text

from devtools.demo import NATIONAL_ID_SHARE, seed_demo
from models.crypto import current_keys, national_id_digest
from models.grants import Grant, GrantEvent, GrantStatus
from models.messages import MessageKind, MessageStatus, OutboundMessage
from models.people import Beneficiary, Contact
from models.reports import dashboard
from models.search import BeneficiaryFilters, search_beneficiaries
from models.staff import create_staff

PEOPLE = 300


def test_seeded_national_ids_are_encrypted_hashed_and_found_by_the_search_box(db):
    with db.session() as session:
        assert seed_demo(session, PEOPLE) == PEOPLE
    with db.session() as session:
        stored = session.execute(
            text("SELECT national_id_cipher, national_id_hash FROM beneficiaries WHERE national_id_cipher IS NOT NULL")
        ).all()
        assert 0.4 * PEOPLE < len(stored) < (NATIONAL_ID_SHARE + 0.15) * PEOPLE  # optional, as at registration
        plain = [current_keys().decrypt(cipher) for cipher, _ in stored]
        assert all(len(national_id) == 9 and national_id.isdigit() for national_id in plain)
        for national_id, (cipher, digest) in zip(plain, stored, strict=True):
            assert national_id_digest(national_id) == digest and national_id not in cipher
        admin = create_staff(session, "admin@example.org", "admin", "a-long-enough-password")
        found = search_beneficiaries(session, admin, BeneficiaryFilters(q=plain[0])).items
        assert [row.national_id for row in found] == [plain[0]]


def test_every_seeded_person_has_a_grant_history_and_the_sms_they_would_have_had(db):
    with db.session() as session:
        seed_demo(session, PEOPLE)
    with db.session() as session:
        seed_demo(session, 100, seed=7)  # a second run adds people beside the first, and their SMS only
    with db.session() as session:
        people = session.scalar(select(func.count()).select_from(Beneficiary))
        assert people == session.scalar(select(func.count()).select_from(Contact)) == PEOPLE + 100
        events = dict(session.execute(select(GrantEvent.grant_id, func.count()).group_by(GrantEvent.grant_id)).all())
        assert len(events) == people and min(events.values()) == 1
        kinds = dict(session.execute(select(OutboundMessage.kind, func.count()).group_by(OutboundMessage.kind)).all())
        past_review = session.scalar(
            select(func.count()).where(Grant.status.not_in([GrantStatus.REGISTERED, GrantStatus.UNDER_REVIEW]))
        )
        assert kinds == {MessageKind.REGISTRATION_CONFIRMATION: people, MessageKind.GRANT_NOTICE: past_review}
        statuses = set(session.execute(select(OutboundMessage.status).distinct()).scalars())
        assert MessageStatus.DELIVERED in statuses and MessageStatus.QUEUED not in statuses  # nothing left to send
        figures = dashboard(session)
        assert figures.registrations == people and figures.sms.total == people + past_review
