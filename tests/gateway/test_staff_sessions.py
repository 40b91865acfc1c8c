"""Console sessions end when they should: a password change, a deactivation or an admin's "sign out everywhere"
ends the account's other sessions, and no session outlives STAFF_SESSION_MAX_HOURS however busy it is."""

from __future__ import annotations

import time

from sqlalchemy import select

from gateway.auth import SESSION_STARTED
from models.audit import AuditLog
from models.staff import StaffUser
from tests.factories import STAFF_PASSWORD, make_staff
from tests.gateway.test_auth import csrf_from, login

NEW_PASSWORD = "a brand new passphrase"


def signed_in(client) -> bool:
    return client.get("/reports").status_code == 200


def post(client, path, **form):
    return client.post(path, data={**form, "csrf_token": csrf_from(client, "/reports")})


def actions(db) -> list[str]:
    with db.session() as session:
        return list(session.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(app, db):
    make_staff(db, "officer@example.org")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "officer@example.org")
    login(phone, "officer@example.org")
    wrong = post(
        laptop, "/account/password", current_password="not it", new_password=NEW_PASSWORD, repeat_password=NEW_PASSWORD
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    assert signed_in(phone)
    changed = post(
        laptop,
        "/account/password",
        current_password=STAFF_PASSWORD,
        new_password=NEW_PASSWORD,
        repeat_password=NEW_PASSWORD,
    )
    assert changed.status_code == 302
    assert signed_in(laptop) and not signed_in(phone)
    assert "staff.password_change" in actions(db)
    fresh = app.test_client()
    assert login(fresh, "officer@example.org", NEW_PASSWORD).status_code == 302 and signed_in(fresh)


def test_an_admins_sign_out_everywhere_and_a_deactivation_end_every_session(app, db):
    make_staff(db, "admin@example.org", "admin")
    make_staff(db, "officer@example.org")
    with db.session() as session:
        target = session.execute(select(StaffUser.id).filter_by(email="officer@example.org")).scalar_one()
    admin, officer = app.test_client(), app.test_client()
    login(admin, "admin@example.org")
    login(officer, "officer@example.org")
    assert post(admin, f"/staff/{target}/sessions/end").status_code == 302
    assert not signed_in(officer) and signed_in(admin)
    login(officer, "officer@example.org")  # a new login is a new session, under the new generation
    assert signed_in(officer)
    assert post(admin, f"/staff/{target}/active", active="0").status_code == 302
    assert post(admin, f"/staff/{target}/active", active="1").status_code == 302
    assert not signed_in(officer)  # reactivating does not bring the old session back
    assert {"staff.sign_out", "staff.deactivate"} <= set(actions(db))


def test_a_session_ends_after_its_absolute_lifetime_however_busy(make_app, db, redis):
    app = make_app(staff_session_max_hours=12)
    make_staff(db, "officer@example.org")
    client = app.test_client()
    login(client, "officer@example.org")
    assert signed_in(client)  # every request renews the idle expiry, never the start
    with client.session_transaction() as session:
        session[SESSION_STARTED] = int(time.time()) - 12 * 3600 - 1
    assert client.get("/reports").headers["Location"].startswith("/login")
