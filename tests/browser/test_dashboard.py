"""The dashboard's charts and the staff form in a real browser."""

from __future__ import annotations

from sqlalchemy import select

from models.audit import AuditLog
from models.staff import find_staff
from tests.factories import register


def test_an_admin_sees_the_charts_and_creates_a_staff_account(login, db):
    register(db, district="Leribe", sex="male")
    page = login("admin")
    charts = page.locator("svg.chart[role=img]")
    assert charts.count() == 5
    assert page.locator("svg.chart title", has_text="Registrations by district").count() == 1
    assert charts.nth(1).bounding_box()["width"] > 0  # drawn, not just present in the markup
    page.click('nav a[href="/staff"]')
    page.fill("input[name=email]", "lineo@example.org")
    page.select_option("select[name=role]", "officer")
    page.check("input[name=district][value=Leribe]")
    page.fill("input[name=password]", "a long password")
    page.click("text=Create account")
    page.wait_for_url("**/staff")
    assert "Created lineo@example.org" in page.content()
    with db.session() as session:
        assert find_staff(session, "lineo@example.org").district_list == ("Leribe",)
        actors = session.execute(select(AuditLog.actor).where(AuditLog.action == "staff.create")).scalars().all()
        assert actors == ["admin@example.org"]
