"""Staff accounts resist guessing: throttles per caller address and per account (Redis, shared by every web
process), the audit log names the real caller behind a trusted proxy."""

from __future__ import annotations

from ipaddress import ip_network

from sqlalchemy import select

from models.audit import AuditLog
from tests.factories import STAFF_PASSWORD, make_staff
from tests.gateway.test_auth import csrf_from

SPRAYER, COLLEAGUE, PROXY = "203.0.113.7", "198.51.100.20", "10.0.0.2"


def attempt(client, email, password, address):
    client.environ_base["REMOTE_ADDR"] = address
    form = {"email": email, "password": password, "csrf_token": csrf_from(client)}
    return client.post("/login", data=form)


def logged_in(response) -> bool:
    return response.status_code == 302 and "/login" not in response.headers["Location"]


def login_entries(db) -> list[AuditLog]:
    with db.session() as session:
        return list(session.execute(select(AuditLog).where(AuditLog.action.like("staff.login%"))).scalars())


def test_spraying_one_password_over_many_accounts_is_stopped_per_address(make_app, db, redis):
    app = make_app(login_attempts_per_address=3, login_attempts_per_account=100)
    for number in range(5):
        make_staff(db, f"staff{number}@example.org")
    sprayer, colleague = app.test_client(), app.test_client()
    for number in range(3):
        assert not logged_in(attempt(sprayer, f"staff{number}@example.org", "Spring2026!", SPRAYER))
    # The fourth account's real password: refused unchecked, the address has used its tries.
    assert not logged_in(attempt(sprayer, "staff3@example.org", STAFF_PASSWORD, SPRAYER))
    assert logged_in(attempt(colleague, "staff3@example.org", STAFF_PASSWORD, COLLEAGUE))
    reasons = [(entry.details_dict["reason"], entry.ip) for entry in login_entries(db) if entry.action != "staff.login"]
    assert reasons[-1] == ("throttled", SPRAYER)


def test_guessing_one_account_from_many_addresses_is_stopped_per_account(make_app, db, redis):
    app = make_app(login_attempts_per_address=100, login_attempts_per_account=2)
    make_staff(db, "officer@example.org")
    client = app.test_client()
    for number in range(2):
        assert not logged_in(attempt(client, "officer@example.org", "wrong guess", f"192.0.2.{number}"))
    assert not logged_in(attempt(client, "OFFICER@example.org", STAFF_PASSWORD, "192.0.2.99"))
    assert login_entries(db)[-1].details_dict["reason"] == "throttled"


def test_the_audit_log_and_the_throttle_see_the_caller_behind_a_trusted_proxy(make_app, db, redis):
    app = make_app(trusted_proxies=(ip_network("10.0.0.0/8"),), login_attempts_per_address=1)
    make_staff(db, "officer@example.org")
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = f"6.6.6.6, {SPRAYER}"  # the left-most part is the caller's own
    assert logged_in(attempt(client, "officer@example.org", STAFF_PASSWORD, PROXY))
    assert login_entries(db)[-1].ip == SPRAYER
    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = COLLEAGUE
    assert logged_in(attempt(other, "officer@example.org", STAFF_PASSWORD, PROXY))  # the proxy is not one caller
