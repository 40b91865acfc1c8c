"""A date staff type means a Lesotho day, wherever they type it: the beneficiary list, a campaign audience, a report.

Lesotho is two hours ahead of UTC, so the two hours before midnight UTC are already the next day there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update

from models.campaigns import Audience, Campaign
from models.clock import end_of_lesotho_day, lesotho_time, lesotho_today, start_of_lesotho_day
from models.people import Beneficiary
from models.reports import Filters, registrations_breakdown
from notifications.campaigns.lifecycle import create_campaign, preview_campaign
from tests.factories import register
from tests.gateway.test_console_beneficiaries import log_in, references_on

# 01:00 on 1 November in Lesotho, and 23:30 on 31 October there.
EARLY_ON_THE_FIRST = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
LATE_ON_THE_LAST = datetime(2026, 10, 31, 21, 30, tzinfo=UTC)
FIRST = date(2026, 11, 1)
LAST = date(2026, 10, 31)


def test_a_lesotho_day_runs_from_22_00_utc_the_evening_before():
    assert start_of_lesotho_day(FIRST) == datetime(2026, 10, 31, 22, 0, tzinfo=UTC)
    assert end_of_lesotho_day(LAST) == start_of_lesotho_day(FIRST)
    assert lesotho_time(EARLY_ON_THE_FIRST).date() == lesotho_today(EARLY_ON_THE_FIRST) == FIRST
    assert lesotho_today(LATE_ON_THE_LAST) == LAST
    assert lesotho_time(datetime(2026, 10, 31, 23, 0)) == lesotho_time(EARLY_ON_THE_FIRST)  # naive, as SQLite reads


def registered_at(db, moment: datetime) -> str:
    reference, _ = register(db)
    with db.session() as session:
        session.execute(update(Beneficiary).where(Beneficiary.reference == reference).values(created_at=moment))
    return reference


def audience_size(db, settings, audience: Audience) -> int:
    with db.session() as session:
        campaign = create_campaign(
            session, name="Dates", text_en="Hello", text_st="Lumela", audience=audience, created_by="t"
        )
        return preview_campaign(session, session.get(Campaign, campaign.id), settings).total


@pytest.mark.parametrize(
    ("field", "day", "inside", "outside"),
    [
        ("registered_from", FIRST, EARLY_ON_THE_FIRST, LATE_ON_THE_LAST),
        ("registered_to", LAST, LATE_ON_THE_LAST, EARLY_ON_THE_FIRST),
    ],
)
def test_the_console_filter_a_campaign_audience_and_the_reports_count_the_same_lesotho_day(
    client, db, settings, field, day, inside, outside
):
    inside_reference = registered_at(db, inside)
    registered_at(db, outside)
    log_in(client, db)
    assert references_on(client.get(f"/beneficiaries?{field}={day.isoformat()}")) == [inside_reference]
    assert audience_size(db, settings, Audience(**{field: day})) == 1
    period = Filters(start=day) if field == "registered_from" else Filters(end=day)
    with db.session() as session:
        assert sum(registrations_breakdown(session, period).values()) == 1
