"""The dashboard and the reports pages through the real app: figures, charts, district scope, CSV and its audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from models.audit import AuditLog
from models.grants import GrantStatus, find_grant_by_reference, move_grant
from tests.factories import STAFF_PASSWORD, make_staff, register

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def logged_in(app, db, role="viewer", districts=None, email=None):
    """A test client with a staff member of `role` logged in through the form."""
    email = email or f"{role}@example.org"
    make_staff(db, email, role, districts=districts)
    client = app.test_client()
    token = CSRF_INPUT.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": email, "password": STAFF_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def seed(db):
    """Three Maseru and one Leribe beneficiary; one Maseru grant paid M1,500.00, one Leribe grant M700.00."""
    year = datetime.now(UTC).year
    maseru = [
        register(db, district="Maseru", sex=sex, year_of_birth=year - 30)[0] for sex in ("female", "male", "male")
    ]
    leribe = register(db, district="Leribe", sex="female", year_of_birth=year - 20)[0]
    for reference, amount in ((maseru[0], "1500"), (leribe, "700")):
        with db.session() as session:
            grant = find_grant_by_reference(session, reference)
            move_grant(session, grant, GrantStatus.UNDER_REVIEW, actor="t")
            move_grant(session, grant, GrantStatus.APPROVED, actor="t", amount=Decimal(amount))
            move_grant(session, grant, GrantStatus.PAYMENT_SCHEDULED, actor="t", channel="ecocash")
            move_grant(session, grant, GrantStatus.PAID, actor="t")


def test_the_dashboard_shows_figures_and_accessible_inline_charts(app, db):
    seed(db)
    page = logged_in(app, db, "viewer").get("/").get_data(as_text=True)
    assert "<script" not in page and "<img" not in page
    assert page.count('<svg class="chart" role="img"') == 5
    assert '<title id="chart-registrations-by-district-t">Registrations by district</title>' in page
    assert "Maseru: 3; Mohale&#39;s Hoek: 0" in page  # the chart's description reads out the numbers
    assert "<strong>4</strong> registered" in page and "<strong>M2,200.00</strong> paid out" in page
    assert '<th scope="row">Paid</th><td>2</td>' in page  # the funnel as a table too
    funnel = re.search(r"Grants by status as a table.*?</table>", page, re.S).group(0)
    assert re.findall(r'<th scope="row">([^<]+)</th>', funnel) == [
        "Registered",
        "Under review",
        "Approved",
        "Not eligible",
        "Payment scheduled",
        "Paid",
        "Payment failed",
        "Withdrawn",
    ]


def test_an_officer_limited_to_a_district_sees_only_its_figures(app, db):
    seed(db)
    page = logged_in(app, db, "officer", districts="Leribe").get("/").get_data(as_text=True)
    assert "Figures for Leribe only" in page
    assert "<strong>1</strong> registered" in page and "<strong>M700.00</strong> paid out" in page
    assert "Maseru" not in page


def test_the_dashboard_can_count_per_week_and_ignores_a_bad_period(app, db):
    client = logged_in(app, db)
    assert "Registrations per week" in client.get("/?period=week").get_data(as_text=True)
    assert "Registrations per month" in client.get("/?period=fortnight").get_data(as_text=True)


def test_anonymous_visitors_get_no_figures(client):
    for path in ("/", "/reports", "/reports/registrations.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path


def test_reports_show_each_table_with_a_csv_link_keeping_the_filters(app, db):
    seed(db)
    page = logged_in(app, db).get("/reports?start=2020-01-01&district=Maseru").get_data(as_text=True)
    for name in ("registrations", "registrations-by-month", "grants", "sms", "callbacks"):
        assert f'href="/reports/{name}.csv?start=2020-01-01&amp;district=Maseru"' in page
    assert '<td>Maseru</td><td>male</td><td>25-34</td><td class="n">2</td>' in page
    assert "Leribe</td>" not in page


def test_a_csv_download_is_the_table_and_is_audited(app, db):
    seed(db)
    client = logged_in(app, db, "viewer")
    response = client.get("/reports/grants.csv?start=2020-01-01&end=2099-12-31")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="grants_2020-01-01_2099-12-31.csv"' in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("District,Sex,Age band,Registered,Under review") and lines[0].endswith(
        "Amount paid (LSL)"
    )
    assert lines[-1] == "Total,,,2,0,0,0,0,2,0,0,2200.00"
    with db.session() as session:
        entry = session.execute(select(AuditLog).where(AuditLog.action == "export.report")).scalar_one()
        assert (entry.actor, entry.object_type, entry.object_id) == ("viewer@example.org", "report", "grants")
        assert entry.details_dict == {"start": "2020-01-01", "end": "2099-12-31", "districts": []}


def test_reports_refuse_other_districts_bad_dates_and_unknown_tables(app, db):
    client = logged_in(app, db, "officer", districts="Leribe")
    assert client.get("/reports?district=Maseru").status_code == 403
    assert client.get("/reports/registrations.csv?district=Maseru").status_code == 403
    bad = client.get("/reports?start=31/12/2026")
    assert bad.status_code == 400 and "write it as YYYY-MM-DD" in bad.get_data(as_text=True)
    assert client.get("/reports?start=2026-02-01&end=2026-01-01").status_code == 400
    assert client.get("/reports/salaries.csv").status_code == 404
    with db.session() as session:
        assert session.execute(select(AuditLog).where(AuditLog.action == "export.report")).first() is None


def test_a_limited_officers_csv_covers_their_districts_only(app, db):
    seed(db)
    client = logged_in(app, db, "officer", districts="Leribe")
    lines = client.get("/reports/registrations.csv").get_data(as_text=True).splitlines()
    assert lines == ["District,Sex,Age band,Registrations", "Leribe,female,18-24,1", "Total,,,1"]
    with db.session() as session:
        entry = session.execute(select(AuditLog).where(AuditLog.action == "export.report")).scalar_one()
        assert entry.details_dict["districts"] == ["Leribe"]
