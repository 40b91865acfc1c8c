"""Report figures from known data, on both databases: exact counts, sums and bands, and the district scope."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from models.audit import AuditFilters, audit_entries, record
from models.grants import GrantStatus, find_grant_by_reference, move_grant
from models.messages import MessageStatus, OutboundMessage
from models.people import Beneficiary, Contact, find_beneficiary_by_reference
from models.reports import (
    DASHBOARD_PERIODS,
    NOT_REGISTERED,
    DashboardCount,
    Filters,
    Period,
    ReportError,
    callbacks_breakdown,
    dashboard,
    grants_breakdown,
    period_starts,
    refresh_dashboard_counts,
    registrations_breakdown,
    registrations_over_time,
    report_table,
    sms_breakdown,
    to_csv,
)
from models.requests import CallbackRequest
from tests.factories import register

THIS_YEAR = datetime.now(UTC).year


def born(age: int) -> int:
    """A year of birth that gives `age` at a registration made this year."""
    return THIS_YEAR - age


def move(db, reference, *steps):
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        for status, options in steps:
            move_grant(session, grant, status, actor="test", **options)


PAY = [
    (GrantStatus.UNDER_REVIEW, {}),
    (GrantStatus.APPROVED, {"amount": Decimal("1500")}),
    (GrantStatus.PAYMENT_SCHEDULED, {"channel": "mpesa"}),
]


@pytest.fixture
def people(db):
    """Five beneficiaries in three districts, with grants at known stages, SMS and call-backs."""
    refs = {
        "maseru_f_20": register(db, district="Maseru", sex="female", year_of_birth=born(20))[0],
        "maseru_f_30": register(db, district="Maseru", sex="female", year_of_birth=born(30))[0],
        "maseru_m_60": register(db, district="Maseru", sex="male", year_of_birth=born(60))[0],
        "leribe_m_40": register(db, district="Leribe", sex="male", year_of_birth=born(40))[0],
        "berea_f_16": register(db, district="Berea", sex="female", year_of_birth=born(16))[0],
    }
    move(db, refs["maseru_f_20"], *PAY, (GrantStatus.PAID, {}))
    move(
        db,
        refs["leribe_m_40"],
        *PAY[:2],
        (GrantStatus.PAYMENT_SCHEDULED, {"channel": "bank", "amount": Decimal("2000.50"), "reason": "household of 6"}),
        (GrantStatus.PAID, {}),
    )
    move(
        db,
        refs["maseru_m_60"],
        (GrantStatus.UNDER_REVIEW, {}),
        (GrantStatus.NOT_ELIGIBLE, {"reason": "not a returnee"}),
    )
    move(db, refs["maseru_f_30"], (GrantStatus.UNDER_REVIEW, {}))
    with db.session() as session:
        contact_of = {key: find_beneficiary_by_reference(session, ref).contact for key, ref in refs.items()}
        stranger = Contact(phone="+26658999999", language="en")
        session.add(stranger)
        session.flush()
        statuses = {
            "maseru_f_20": [MessageStatus.DELIVERED, MessageStatus.DELIVERED, MessageStatus.FAILED],
            "leribe_m_40": [MessageStatus.DELIVERED, MessageStatus.QUEUED, MessageStatus.SENT],
            "maseru_m_60": [MessageStatus.REJECTED],
        }
        for key, message_statuses in statuses.items():
            for status in message_statuses:
                session.add(_message(contact_of[key], status))
        session.add(_message(stranger, MessageStatus.DELIVERED))
        now = datetime.now(UTC)
        session.add(CallbackRequest(contact_id=contact_of["maseru_f_30"].id, topic="grant", handled_at=now))
        session.add(CallbackRequest(contact_id=contact_of["maseru_f_30"].id, topic="grant"))
        session.add(CallbackRequest(contact_id=contact_of["leribe_m_40"].id, topic="problem", handled_at=now))
        session.add(CallbackRequest(contact_id=stranger.id, topic="other"))
    return refs


def _message(contact, status) -> OutboundMessage:
    return OutboundMessage(
        phone=contact.phone, contact_id=contact.id, kind="staff", language="en", body="hello", status=status
    )


def test_registrations_are_counted_by_district_sex_and_age_band_at_registration(db, people):
    with db.session() as session:
        figures = registrations_breakdown(session, Filters())
    assert figures == {
        ("Berea", "female", "under 18"): 1,
        ("Leribe", "male", "35-44"): 1,
        ("Maseru", "female", "18-24"): 1,
        ("Maseru", "female", "25-34"): 1,
        ("Maseru", "male", "55+"): 1,
    }


def test_the_age_band_edges_fall_where_the_donor_draws_them(db):
    for age in (17, 18, 24, 25, 54, 55):
        register(db, year_of_birth=born(age))
    with db.session() as session:
        figures = registrations_breakdown(session, Filters())
    bands = {band: n for (_, _, band), n in figures.items()}
    assert bands == {"under 18": 1, "18-24": 2, "25-34": 1, "45-54": 1, "55+": 1}


def test_the_date_range_counts_lesotho_days_both_ends_included(db, people):
    # 2026-03-31 23:30 in Lesotho is 21:30 UTC: it belongs to March 31st there, and to no day in April.
    with db.session() as session:
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.reference == people["maseru_m_60"])
            .values(created_at=datetime(2026, 3, 31, 21, 30, tzinfo=UTC))
        )
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.reference == people["leribe_m_40"])
            .values(created_at=datetime(2026, 4, 1, 21, 59, tzinfo=UTC))  # 23:59 on April 1st in Lesotho
        )
        march = registrations_breakdown(session, Filters(date(2026, 3, 31), date(2026, 3, 31)))
        april_first = registrations_breakdown(session, Filters(date(2026, 4, 1), date(2026, 4, 1)))
    assert [key[:2] for key in march] == [("Maseru", "male")]
    assert [key[:2] for key in april_first] == [("Leribe", "male")]
    assert sum(march.values()) == sum(april_first.values()) == 1


def test_grants_count_by_status_and_sum_only_what_was_paid(db, people):
    with db.session() as session:
        figures = grants_breakdown(session, Filters())
        table = report_table(session, "grants", Filters())
    maseru_young = figures[("Maseru", "female", "18-24")]
    assert maseru_young.by_status[GrantStatus.PAID] == 1 and maseru_young.amount_paid == Decimal("1500.00")
    assert figures[("Leribe", "male", "35-44")].amount_paid == Decimal("2000.50")
    assert figures[("Maseru", "female", "25-34")].amount_paid == Decimal("0.00")  # under review: nothing paid
    statuses = dict(zip(table.columns[3:-1], table.totals[3:-1], strict=True))
    assert statuses == {
        "Registered": 1,
        "Under review": 1,
        "Approved": 0,
        "Not eligible": 1,
        "Payment scheduled": 0,
        "Paid": 2,
        "Payment failed": 0,
        "Withdrawn": 0,
    }
    assert table.totals[-1] == Decimal("3500.50")


def test_sms_sent_delivered_and_failed_include_numbers_that_never_registered(db, people):
    with db.session() as session:
        figures = sms_breakdown(session, Filters())
    young = figures[("Maseru", "female", "18-24")]
    assert (young.total, young.sent, young.delivered, young.failed) == (3, 3, 2, 1)
    leribe = figures[("Leribe", "male", "35-44")]
    assert (leribe.total, leribe.sent, leribe.delivered) == (3, 2, 1)  # the queued one is not sent yet
    assert figures[("Maseru", "male", "55+")].failed == 1  # rejected counts as sent and failed
    assert figures[(NOT_REGISTERED, NOT_REGISTERED, NOT_REGISTERED)].delivered == 1


def test_callbacks_requested_and_handled(db, people):
    with db.session() as session:
        figures = callbacks_breakdown(session, Filters())
    assert figures[("Maseru", "female", "25-34")].requested == 2
    assert figures[("Maseru", "female", "25-34")].handled == 1
    assert figures[("Leribe", "male", "35-44")].open == 0
    assert figures[(NOT_REGISTERED, NOT_REGISTERED, NOT_REGISTERED)].open == 1


def test_the_dashboard_for_everyone_and_for_one_district(db, people):
    today = datetime.now(UTC).date()
    with db.session() as session:
        everyone = dashboard(session, today=today)
        maseru = dashboard(session, ["Maseru"], today=today, period=Period.WEEK)
    assert everyone.registrations == 5 and everyone.by_sex == {"female": 3, "male": 2}
    assert everyone.by_district["Maseru"] == 3 and everyone.by_district["Quthing"] == 0
    assert list(everyone.funnel) == list(GrantStatus)  # lifecycle order
    assert everyone.funnel[GrantStatus.PAID] == 2 and everyone.amount_paid == Decimal("3500.50")
    assert (everyone.sms.sent, everyone.sms.delivered, everyone.sms.failed) == (7, 4, 2)
    assert everyone.sms.delivery_rate == pytest.approx(4 / 7)
    assert (everyone.callbacks.requested, everyone.callbacks.handled) == (4, 2)
    assert everyone.over_time[-1][1] == 5 and len(everyone.over_time) == 12

    assert maseru.registrations == 3 and list(maseru.by_district) == ["Maseru"]
    assert maseru.funnel[GrantStatus.PAID] == 1 and maseru.amount_paid == Decimal("1500.00")
    assert (maseru.sms.sent, maseru.sms.delivered, maseru.sms.failed) == (4, 2, 2)
    assert (maseru.callbacks.requested, maseru.callbacks.handled) == (2, 1)
    assert maseru.over_time[-1] == (today - timedelta(days=today.weekday()), 3)


def _counted_directly(session, districts, today, period):
    """The dashboard's figures counted from the tables themselves, through the report breakdowns."""
    filters = Filters(districts=tuple(districts))
    registrations = registrations_breakdown(session, filters)
    grants = grants_breakdown(session, filters)
    sms = sms_breakdown(session, filters)
    callbacks = callbacks_breakdown(session, filters)
    first_day = period_starts(today, period, DASHBOARD_PERIODS)[0]
    return {
        "registrations": sum(registrations.values()),
        "by_sex": {sex: sum(n for (_, s, _), n in registrations.items() if s == sex) for sex in ("female", "male")},
        "funnel": {status: sum(cell.by_status[status] for cell in grants.values()) for status in GrantStatus},
        "amount_paid": sum((cell.amount_paid for cell in grants.values()), Decimal("0.00")),
        "sms": tuple(sum(getattr(cell, name) for cell in sms.values()) for name in ("total", "sent", "delivered")),
        "callbacks": (sum(c.requested for c in callbacks.values()), sum(c.handled for c in callbacks.values())),
        "over_time": registrations_over_time(session, period, first_day, today, districts),
    }


def _shown(board):
    return {
        "registrations": board.registrations,
        "by_sex": board.by_sex,
        "funnel": board.funnel,
        "amount_paid": board.amount_paid,
        "sms": (board.sms.total, board.sms.sent, board.sms.delivered),
        "callbacks": (board.callbacks.requested, board.callbacks.handled),
        "over_time": board.over_time,
    }


SCOPES = [(), ("Maseru",), ("Leribe", "Berea")]


def test_the_dashboard_counts_match_a_direct_count_and_follow_changes_at_the_next_recount(db, people):
    today = datetime.now(UTC).date()
    with db.session() as session:
        for districts in SCOPES:
            for period in Period:
                board = dashboard(session, districts, today=today, period=period)
                assert _shown(board) == _counted_directly(session, districts, today, period), (districts, period)
        assert board.as_of is not None
    # Changes everywhere the figures come from: a registration, grant moves, message fates, a call-back handled.
    newcomer, _ = register(db, district="Maseru", sex="male", year_of_birth=born(25))
    move(db, people["maseru_f_30"], (GrantStatus.APPROVED, {"amount": Decimal("800")}))
    move(db, newcomer, (GrantStatus.UNDER_REVIEW, {}))
    with db.session() as session:
        session.execute(
            update(OutboundMessage).where(OutboundMessage.status == MessageStatus.QUEUED).values(status="delivered")
        )
        session.execute(
            update(CallbackRequest).where(CallbackRequest.handled_at.is_(None)).values(handled_at=datetime.now(UTC))
        )
        before = _shown(dashboard(session, today=today))
        assert before != _counted_directly(session, (), today, Period.MONTH)  # the counts wait for their recount
        assert refresh_dashboard_counts(session, max_age=60) is False  # counted moments ago: not yet
        assert refresh_dashboard_counts(session) is True
        for districts in SCOPES:
            for period in Period:
                board = dashboard(session, districts, today=today, period=period)
                assert _shown(board) == _counted_directly(session, districts, today, period), (districts, period)
        assert dashboard(session, today=today).registrations == before["registrations"] + 1
        cells = session.execute(select(func.count()).select_from(DashboardCount)).scalar_one()
        assert refresh_dashboard_counts(session) is True
        assert session.execute(select(func.count()).select_from(DashboardCount)).scalar_one() == cells  # replaced


def test_a_dashboard_recounts_counts_older_than_it_accepts(db, people):
    today = datetime.now(UTC).date()
    with db.session() as session:
        assert dashboard(session, today=today).registrations == 5
    register(db)
    with db.session() as session:
        assert dashboard(session, today=today).registrations == 5  # a minute old at most: as counted
        assert dashboard(session, today=today, max_age=0).registrations == 6


def test_registrations_over_time_fold_days_into_weeks_and_months_with_zeros(db):
    reference, _ = register(db)
    register(db)
    with db.session() as session:
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.reference == reference)
            .values(created_at=datetime(2026, 1, 31, 22, 30, tzinfo=UTC))  # Sunday Feb 1st, 00:30 in Lesotho
        )
        months = registrations_over_time(session, Period.MONTH, date(2025, 12, 1), date(2026, 2, 28))
        weeks = registrations_over_time(session, Period.WEEK, date(2026, 1, 19), date(2026, 2, 8))
    assert months == [(date(2025, 12, 1), 0), (date(2026, 1, 1), 0), (date(2026, 2, 1), 1)]
    assert weeks == [(date(2026, 1, 19), 0), (date(2026, 1, 26), 1), (date(2026, 2, 2), 0)]


def test_period_starts_count_back_from_today():
    assert period_starts(date(2026, 3, 15), Period.MONTH, 3) == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert period_starts(date(2026, 1, 7), Period.WEEK, 2) == [date(2025, 12, 29), date(2026, 1, 5)]


def test_the_csv_has_a_header_rows_and_totals_and_no_personal_data(db, people):
    with db.session() as session:
        text = to_csv(report_table(session, "registrations", Filters(districts=("Maseru",))))
        phones = list(session.execute(select(Contact.phone)).scalars())
    assert text.splitlines() == [
        "District,Sex,Age band,Registrations",
        "Maseru,female,18-24,1",
        "Maseru,female,25-34,1",
        "Maseru,male,55+,1",
        "Total,,,3",
    ]
    assert not any(phone in text for phone in phones)


def test_filters_refuse_a_backwards_period_and_unknown_districts():
    with pytest.raises(ReportError, match="after it ends"):
        Filters(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ReportError, match="unknown districts"):
        Filters(districts=("Atlantis",))


def test_audit_entries_are_newest_first_filtered_and_paged_by_key(db):
    with db.session() as session:
        for n in range(5):
            record(session, "a@example.org" if n % 2 else "b@example.org", "staff.update", "staff_user", n)
        record(session, "a@example.org", "token.issue", "api_token", 9)
    with db.session() as session:
        first, next_before = audit_entries(session, AuditFilters(actor="A@example.org"), limit=2)
        second, last = audit_entries(session, AuditFilters(actor="a@example.org"), before_id=next_before, limit=2)
        tokens, _ = audit_entries(session, AuditFilters(action="token.issue"))
        object_three, _ = audit_entries(session, AuditFilters(object_type="staff_user", object_id="3"))
    assert [e.object_id for e in first] == ["9", "3"] and [e.object_id for e in second] == ["1"]
    assert last is None
    assert [e.object_id for e in tokens] == ["9"] and [e.object_id for e in object_three] == ["3"]
