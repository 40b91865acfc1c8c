"""The walk-in migration keeps every existing registration as it was: consent given on USSD, the phone's contact and
its language; afterwards a beneficiary may have no phone."""

from __future__ import annotations

import sqlalchemy as sa

from models.migrate import downgrade, upgrade
from models.people import find_beneficiary_by_reference
from models.registration import register_beneficiary
from tests.factories import answers

# The revision before the walk-in migration, counted from it (so that it holds however the chain is relinked).
BEFORE_WALK_IN = "4da874669f90-1"


def test_existing_registrations_keep_their_phone_and_consent_on_ussd(database_url, db):
    downgrade(database_url, BEFORE_WALK_IN)
    try:
        with db.engine.begin() as connection:
            contact_id = connection.execute(
                sa.text(
                    "INSERT INTO contacts (phone, language, alerts_on, created_at, updated_at)"
                    " VALUES ('+26658099998', 'st', true, '2026-01-05 10:00:00', '2026-01-05 10:00:00') RETURNING id"
                )
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO beneficiaries (contact_id, reference, full_name, sex, year_of_birth, district,"
                    " village, returned_from, year_of_return, household_size, main_need, consent_at,"
                    " registered_via, created_at, updated_at) VALUES (:contact, '12345674', 'Thabo Molapo', 'male',"
                    " 1980, 'Berea', 'Ha Mokhalinyane', 'south_africa', 2020, 3, 'farming',"
                    " '2026-01-05 10:00:00', 'ussd', '2026-01-05 10:00:00', '2026-01-05 10:00:00')"
                ),
                {"contact": contact_id},
            )
    finally:
        upgrade(database_url)
    with db.session() as session:
        before = find_beneficiary_by_reference(session, "12345674")
        assert (before.phone, before.language, before.own_language) == ("+26658099998", "st", None)
        assert (before.consent_channel, before.consent_recorded_by) == ("ussd", None)
        without = register_beneficiary(session, None, answers(), "en")
    with db.session() as session:
        person = find_beneficiary_by_reference(session, without.reference)
        assert (person.contact_id, person.phone, person.language, person.alerts_on) == (None, None, "en", False)
