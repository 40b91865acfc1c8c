"""Staff login, CSRF, roles, bearer tokens and the staff CLI, through the real app on both databases."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gateway.auth import login_required, token_required
from gateway.console.auth import LOGIN_FAILED_MESSAGE
from models.audit import AuditLog
from models.staff import MAX_FAILED_LOGINS, ApiToken, Role, StaffUser, hash_password, issue_token, revoke_token
from tests.factories import LEGACY_STAFF_PASSWORD_HASH, PRODUCTION_SECRETS, STAFF_PASSWORD, make_staff

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client, path="/login") -> str:
    """The CSRF token as a browser gets it: from the hidden field of a form the session was served."""
    return CSRF_INPUT.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, email, password=STAFF_PASSWORD, **extra):
    form = {"email": email, "password": password, "csrf_token": csrf_from(client), **extra}
    return client.post("/login", data=form)


def token_for(db, email) -> str:
    with db.session() as session:
        _, plaintext = issue_token(session, session.execute(select(StaffUser).filter_by(email=email)).scalar_one(), "t")
    return plaintext


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def audit_actions(db) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(e.action, e.actor) for e in session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


# --- console ---------------------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/"
    assert 'type="password"' in client.get(response.headers["Location"]).get_data(as_text=True)


def test_login_sets_an_httponly_lax_session_cookie_and_the_start_page_says_who(client, db):
    make_staff(db, "mpho@example.org", "officer", districts="Maseru")
    response = login(client, "Mpho@Example.org")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/").get_data(as_text=True)
    assert "mpho@example.org" in page and "officer" in page and "Maseru" in page
    assert ("staff.login", "mpho@example.org") in audit_actions(db)


def test_the_session_cookie_is_secure_in_production(make_app, db):
    assert make_app(app_env="production", **PRODUCTION_SECRETS).config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("case", ["wrong password", "unknown email", "disabled", "locked"])
def test_every_refused_login_gets_the_same_generic_answer(client, db, case):
    make_staff(db, "mpho@example.org")
    make_staff(db, "gone@example.org", active=False)
    email, password = {
        "wrong password": ("mpho@example.org", "not the password"),
        "unknown email": ("nobody@example.org", STAFF_PASSWORD),
        "disabled": ("gone@example.org", STAFF_PASSWORD),
        "locked": ("mpho@example.org", STAFF_PASSWORD),
    }[case]
    if case == "locked":
        for _ in range(MAX_FAILED_LOGINS):
            login(client, email, "not the password")
    response = login(client, email, password)
    assert response.status_code == 200 and LOGIN_FAILED_MESSAGE in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert audit_actions(db)[-1] == ("staff.login_failed", email)


def test_a_form_post_without_the_csrf_token_is_refused(client, db):
    make_staff(db, "mpho@example.org")
    csrf_from(client)
    refused = client.post("/login", data={"email": "mpho@example.org", "password": STAFF_PASSWORD})
    forged = client.post(
        "/login", data={"email": "mpho@example.org", "password": STAFF_PASSWORD, "csrf_token": "forged"}
    )
    assert (refused.status_code, forged.status_code) == (400, 400)
    assert client.get("/").status_code == 302
    assert login(client, "mpho@example.org").status_code == 302
    assert client.get("/").status_code == 200


def test_logout_needs_the_csrf_token_and_clears_the_session(client, db):
    make_staff(db, "mpho@example.org")
    login(client, "mpho@example.org")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    with client.session_transaction() as session:
        assert "staff_id" not in session


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(client, db):
    make_staff(db, "mpho@example.org")
    assert login(client, "mpho@example.org", next="/reports?year=2026").headers["Location"] == "/reports?year=2026"
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    assert login(client, "mpho@example.org", next="//evil.example/").headers["Location"] == "/"


def test_a_password_change_ends_existing_sessions(client, db):
    user_id = make_staff(db, "mpho@example.org")
    login(client, "mpho@example.org")
    with db.session() as session:
        session.get(StaffUser, user_id).password_hash = hash_password("a brand new password")
    assert client.get("/").status_code == 302


def test_the_login_that_rewrites_an_old_password_hash_stays_logged_in(client, db):
    user_id = make_staff(db, "mpho@example.org")
    with db.session() as session:
        session.get(StaffUser, user_id).password_hash = LEGACY_STAFF_PASSWORD_HASH
    assert login(client, "mpho@example.org").status_code == 302
    with db.session() as session:
        assert session.get(StaffUser, user_id).password_hash.startswith("scrypt:")
    assert client.get("/").status_code == 200  # the session's fingerprint is the new hash's


def test_console_role_checks_follow_viewer_officer_admin(app, db):
    @login_required(role=Role.OFFICER)
    def officers_only():
        return "officer page"

    app.add_url_rule("/test-officers-only", view_func=officers_only)
    for email, role in (("v@example.org", "viewer"), ("o@example.org", "officer"), ("a@example.org", "admin")):
        make_staff(db, email, role)
    statuses = {}
    for email in ("v@example.org", "o@example.org", "a@example.org"):
        client = app.test_client()
        login(client, email)
        statuses[email] = client.get("/test-officers-only").status_code
    assert statuses == {"v@example.org": 403, "o@example.org": 200, "a@example.org": 200}
    assert app.test_client().get("/test-officers-only").status_code == 302


# --- API -------------------------------------------------------------------------------------------------------------


def test_a_bearer_token_says_who_it_belongs_to(client, db):
    make_staff(db, "mpho@example.org", "officer", districts="Leribe,Maseru")
    response = client.get("/api/v1/me", headers=bearer(token_for(db, "mpho@example.org")))
    assert response.status_code == 200
    assert response.json == {
        "id": response.json["id"],
        "email": "mpho@example.org",
        "role": "officer",
        "districts": ["Leribe", "Maseru"],
        "active": True,
    }


def test_missing_wrong_and_revoked_tokens_get_a_json_401(client, db):
    make_staff(db, "mpho@example.org")
    token = token_for(db, "mpho@example.org")
    with db.session() as session:
        revoke_token(session, session.execute(select(ApiToken)).scalar_one())
    for headers in ({}, bearer("not-a-token"), bearer(token), {"Authorization": "Basic bXBobzpwdw=="}):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert set(response.json) == {"error"} and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_api_never_accepts_the_console_cookie(client, db):
    make_staff(db, "mpho@example.org")
    login(client, "mpho@example.org")
    assert client.get("/api/v1/me").status_code == 401


def test_api_role_checks_answer_json_403_and_need_no_csrf_token(app, db):
    @token_required(role=Role.ADMIN)
    def admins_only():
        return {"ok": True}

    app.add_url_rule("/api/v1/test-admins-only", view_func=admins_only, methods=["POST"])
    client = app.test_client()
    statuses = {}
    for email, role in (("v@example.org", "viewer"), ("o@example.org", "officer"), ("a@example.org", "admin")):
        make_staff(db, email, role)
        response = client.post("/api/v1/test-admins-only", headers=bearer(token_for(db, email)))
        statuses[role] = response.status_code
        assert "error" in response.json if response.status_code == 403 else response.json == {"ok": True}
    assert statuses == {"viewer": 403, "officer": 403, "admin": 200}


def test_api_errors_are_json_and_other_pages_are_not(client):
    missing = client.get("/api/v1/no-such-thing")
    wrong_method = client.post("/api/v1/me")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert "error" in missing.json and "error" in wrong_method.json
    assert client.get("/no-such-page").mimetype == "text/html"


# --- CLI -------------------------------------------------------------------------------------------------------------


def test_cli_creates_staff_from_stdin_and_audits_it(app, db):
    result = run(
        app, "staff", "create", "--email", "Mpho@Example.org", "--role", "OFFICER", "--districts", "maseru,leribe",
        "--password-stdin", input=f"{STAFF_PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with db.session() as session:
        user = session.get(StaffUser, int(result.stdout))
        assert (user.email, user.role, user.districts) == ("mpho@example.org", "officer", "Leribe,Maseru")
        [entry] = session.execute(select(AuditLog)).scalars()
    assert entry.action == "staff.create" and entry.actor.startswith("cli:") and entry.object_id == str(user.id)
    assert entry.details_dict == {
        "email": "mpho@example.org",
        "role": "officer",
        "districts": ["Leribe", "Maseru"],
        "via": "cli",
    }
    assert STAFF_PASSWORD not in entry.details
    listing = run(app, "staff", "list").output
    assert "mpho@example.org" in listing and "Leribe,Maseru" in listing and "never" in listing


def test_cli_asks_for_the_password_twice_without_echo(app, db):
    result = run(app, "staff", "create", "--email", "a@example.org", "--role", "admin", input="long enough pw\n" * 2)
    assert result.exit_code == 0, result.output
    assert "long enough pw" not in result.output
    assert login(app.test_client(), "a@example.org", "long enough pw").status_code == 302


@pytest.mark.parametrize(
    ("args", "password", "exit_code", "message"),
    [
        (["--role", "superuser"], STAFF_PASSWORD, 2, "'superuser' is not one of"),
        (["--role", "officer", "--districts", "Maseru,Soweto"], STAFF_PASSWORD, 1, "unknown district 'Soweto'"),
        (["--role", "officer"], "too short", 1, "at least 10 characters"),
    ],
)
def test_cli_refuses_a_bad_role_district_or_password(app, db, args, password, exit_code, message):
    result = run(app, "staff", "create", "--email", "a@example.org", *args, "--password-stdin", input=password + "\n")
    assert result.exit_code == exit_code and message in result.output
    with db.session() as session:
        assert session.execute(select(StaffUser)).first() is None
        assert session.execute(select(AuditLog)).first() is None


def test_cli_token_is_printed_once_works_and_is_audited(app, db):
    make_staff(db, "mpho@example.org", "viewer")
    result = run(app, "staff", "token", "--email", "MPHO@example.org", "--name", "reports")
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert "shown only now" in result.stderr
    response = app.test_client().get("/api/v1/me", headers=bearer(plaintext))
    assert response.status_code == 200 and response.json["email"] == "mpho@example.org"
    with db.session() as session:
        token = session.execute(select(ApiToken)).scalar_one()
        [entry] = session.execute(select(AuditLog)).scalars()
    assert token.name == "reports" and plaintext not in (token.token_hash, entry.details)
    assert (entry.action, entry.object_type, entry.object_id) == ("token.issue", "api_token", str(token.id))
    assert entry.details_dict == {
        "staff_user": "mpho@example.org",
        "name": "reports",
        "prefix": plaintext[:8],
        "via": "cli",
    }
    assert run(app, "staff", "token", "--email", "nobody@example.org").exit_code == 1
