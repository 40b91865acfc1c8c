"""Staff management and the audit log page for admins, through the real app: every change audited, others refused."""

from __future__ import annotations

import getpass
import html
import re

import pytest
from sqlalchemy import select

from models.audit import AuditLog, record
from models.staff import ApiToken, StaffUser, find_staff
from tests.factories import STAFF_PASSWORD, make_staff
from tests.gateway.test_auth import token_for

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
NEW_TOKEN = re.compile(r'<code id="new-token">([^<]+)</code>')
CONSOLE_ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


class Console:
    """A logged-in test client that posts forms with the CSRF token, as a browser would."""

    def __init__(self, app, db, email, role, districts=None):
        make_staff(db, email, role, districts=districts)
        self.client = app.test_client()
        self.post("/login", email=email, password=STAFF_PASSWORD)

    def get(self, path):
        return self.client.get(path)

    def post(self, path, **form):
        token = CSRF_INPUT.search(self.client.get("/login").get_data(as_text=True) or "")
        if token is None:  # logged in: /login redirects; take the token from a console page
            token = CSRF_INPUT.search(self.client.get("/reports").get_data(as_text=True))
        return self.client.post(path, data={"csrf_token": token.group(1), **form})


def audit(db, action):
    with db.session() as session:
        return [
            (e.actor, e.object_id, e.details_dict)
            for e in session.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).scalars()
        ]


def user_id(db, email):
    with db.session() as session:
        return find_staff(session, email).id


@pytest.fixture
def admin(app, db):
    return Console(app, db, "admin@example.org", "admin")


def test_an_admin_creates_an_officer_limited_to_districts(admin, db):
    response = admin.post(
        "/staff", email="Lineo@Example.org", role="officer", district=["Leribe", "Berea"], password="a long password"
    )
    assert response.status_code == 302
    page = admin.get("/staff").get_data(as_text=True)
    assert "Created lineo@example.org" in page and "Berea, Leribe" in page
    new_id = user_id(db, "lineo@example.org")
    assert audit(db, "staff.create") == [
        (
            "admin@example.org",
            str(new_id),
            {"email": "lineo@example.org", "role": "officer", "districts": ["Berea", "Leribe"], "via": "console"},
        )
    ]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-address", "role": "viewer", "password": "a long password"}, "is not an e-mail address"),
        (
            {"email": "x@example.org", "role": "admin", "district": "Maseru", "password": "a long password"},
            "sees every",
        ),
        ({"email": "x@example.org", "role": "viewer", "password": "short"}, "at least 10 characters"),
        ({"email": "admin@example.org", "role": "viewer", "password": "a long password"}, "already a staff account"),
    ],
)
def test_a_refused_account_says_why_and_writes_nothing(admin, db, form, message):
    response = admin.post("/staff", **form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert audit(db, "staff.create") == []


def cli_create(app, email, role, districts, password, *options):
    args = ["staff", "create", "--email", email, "--role", role, "--districts", districts, "--password-stdin"]
    return app.test_cli_runner().invoke(args=[*args, *options], input=f"{password}\n")


def test_the_cli_and_the_console_create_an_account_with_the_same_audit_entry(app, admin, db):
    assert cli_create(app, "cli@example.org", "officer", "Leribe,Berea", "a long password").exit_code == 0
    make_staff(db, "second.admin@example.org", "admin")
    as_admin = cli_create(app, "as@example.org", "viewer", "", "a long password", "--as", "second.admin@example.org")
    assert as_admin.exit_code == 0
    web = admin.post(
        "/staff", email="web@example.org", role="officer", district=["Leribe", "Berea"], password="a long password"
    )
    assert web.status_code == 302
    (cli_actor, _, cli), (as_actor, _, as_details), (web_actor, _, web) = audit(db, "staff.create")
    assert (cli_actor, as_actor, web_actor) == (
        f"cli:{getpass.getuser()}",
        "second.admin@example.org",
        "admin@example.org",
    )
    assert (cli["via"], as_details["via"], web["via"]) == ("cli", "cli", "console")
    assert set(cli) == set(as_details) == set(web) == {"email", "role", "districts", "via"}
    assert {key: cli[key] for key in ("role", "districts")} == {key: web[key] for key in ("role", "districts")}


@pytest.mark.parametrize(
    ("email", "districts", "password"),
    [
        ("new@example.org", "", "short"),
        ("new@example.org", "Gauteng", "a long password"),
        ("admin@example.org", "", "a long password"),
    ],
)
def test_the_cli_and_the_console_refuse_an_account_with_the_same_reason(app, admin, db, email, districts, password):
    """The same admin, at the console and at the terminal (`--as`), is refused with the same words."""
    web = admin.post("/staff", email=email, role="officer", district=districts, password=password)
    reason = html.unescape(CONSOLE_ERROR.search(web.get_data(as_text=True)).group(1))
    cli = cli_create(app, email, "officer", districts, password, "--as", "admin@example.org")
    assert (web.status_code, cli.exit_code) == (400, 1)
    assert cli.output.strip().endswith(f"Error: {reason}")
    assert audit(db, "staff.create") == []


def test_only_an_admin_creates_accounts_from_the_cli(app, db):
    make_staff(db, "officer@example.org", "officer")
    result = cli_create(app, "new@example.org", "viewer", "", "a long password", "--as", "officer@example.org")
    assert result.exit_code == 1 and "needs the admin role" in result.output
    assert audit(db, "staff.create") == []


def test_a_token_issued_from_the_cli_is_audited_like_one_from_the_console(app, admin, db):
    result = app.test_cli_runner().invoke(
        args=["staff", "token", "--email", "admin@example.org", "--name", "reports", "--as", "admin@example.org"]
    )
    assert result.exit_code == 0
    page = admin.post(f"/staff/{user_id(db, 'admin@example.org')}/tokens", name="reports")
    assert page.status_code == 201
    (cli_actor, _, cli), (web_actor, _, web) = audit(db, "token.issue")
    assert cli_actor == web_actor == "admin@example.org"
    assert (cli.pop("via"), web.pop("via")) == ("cli", "console")
    assert cli.pop("prefix") != web.pop("prefix")
    assert cli == web == {"staff_user": "admin@example.org", "name": "reports"}


def test_an_admin_issues_api_tokens_only_for_themselves(app, admin, db):
    """A token for someone else would let an admin act in their name; an operator on the server still may."""
    make_staff(db, "script@example.org", "viewer")
    target = user_id(db, "script@example.org")
    refused = admin.post(f"/staff/{target}/tokens", name="reports")
    assert refused.status_code == 400 and "only for themselves" in refused.get_data(as_text=True)
    assert "Issue API token" not in admin.get(f"/staff/{target}").get_data(as_text=True)
    runner = app.test_cli_runner()
    as_admin = runner.invoke(
        args=["staff", "token", "--email", "script@example.org", "--name", "reports", "--as", "admin@example.org"]
    )
    assert as_admin.exit_code == 1 and "only for themselves" in as_admin.output
    assert audit(db, "token.issue") == []
    operator = runner.invoke(args=["staff", "token", "--email", "script@example.org", "--name", "reports"])
    assert operator.exit_code == 0
    [(actor, _, details)] = audit(db, "token.issue")
    assert actor.startswith("cli:") and details["staff_user"] == "script@example.org"


def test_an_admin_changes_role_and_districts_with_old_and_new_in_the_audit(admin, db):
    make_staff(db, "mpho@example.org", "viewer")
    target = user_id(db, "mpho@example.org")
    assert admin.post(f"/staff/{target}", role="officer", district="Maseru").status_code == 302
    with db.session() as session:
        user = session.get(StaffUser, target)
        assert (user.role, user.district_list) == ("officer", ("Maseru",))
    assert audit(db, "staff.update") == [
        (
            "admin@example.org",
            str(target),
            {
                "email": "mpho@example.org",
                "role": ["viewer", "officer"],
                "districts": [[], ["Maseru"]],
                "via": "console",
            },
        )
    ]
    assert admin.post(f"/staff/{target}", role="officer", district="Maseru").status_code == 302
    assert len(audit(db, "staff.update")) == 1  # nothing changed, nothing recorded


def test_an_admin_cannot_lock_themselves_out(admin, db):
    me = user_id(db, "admin@example.org")
    demote = admin.post(f"/staff/{me}", role="viewer")
    deactivate = admin.post(f"/staff/{me}/active", active="0")
    assert demote.status_code == deactivate.status_code == 400
    assert "your own account" in demote.get_data(as_text=True)
    with db.session() as session:
        assert session.get(StaffUser, me).role == "admin" and session.get(StaffUser, me).active
    assert audit(db, "staff.update") == audit(db, "staff.deactivate") == []


def test_deactivating_ends_access_and_reactivating_restores_it(app, admin, db):
    officer = Console(app, db, "mpho@example.org", "officer")
    target = user_id(db, "mpho@example.org")
    assert officer.get("/").status_code == 200
    assert admin.post(f"/staff/{target}/active", active="0").status_code == 302
    assert officer.get("/").status_code == 302  # sent to the login page
    assert admin.post(f"/staff/{target}/active", active="1").status_code == 302
    assert [(a, o) for a, o, _ in audit(db, "staff.deactivate") + audit(db, "staff.reactivate")] == [
        ("admin@example.org", str(target)),
        ("admin@example.org", str(target)),
    ]


def test_a_token_is_shown_once_works_and_can_be_revoked(admin, client, db):
    target = user_id(db, "admin@example.org")
    response = admin.post(f"/staff/{target}/tokens", name="nightly export")
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    plaintext = NEW_TOKEN.search(response.get_data(as_text=True)).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    detail = admin.get(f"/staff/{target}").get_data(as_text=True)
    assert plaintext not in detail and plaintext[:8] in detail  # only the prefix, ever again
    with db.session() as session:
        token_id = session.execute(select(ApiToken.id)).scalar_one()
    assert admin.post(f"/staff/{target}/tokens/{token_id}/revoke").status_code == 302
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
    issued, revoked = audit(db, "token.issue"), audit(db, "token.revoke")
    assert issued[0][:2] == revoked[0][:2] == ("admin@example.org", str(token_id))
    assert issued[0][2]["name"] == "nightly export" and plaintext not in str(issued + revoked)


def test_a_token_of_another_account_is_not_revoked_through_this_one(admin, db):
    make_staff(db, "a@example.org", "viewer")
    make_staff(db, "b@example.org", "viewer")
    token_for(db, "a@example.org")
    with db.session() as session:
        token_id = session.execute(select(ApiToken.id)).scalar_one()
    assert admin.post(f"/staff/{user_id(db, 'b@example.org')}/tokens/{token_id}/revoke").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "officer"])
def test_staff_and_audit_pages_are_for_admins_only(app, db, role):
    make_staff(db, "other@example.org", "viewer")
    target = user_id(db, "other@example.org")
    console = Console(app, db, f"{role}@example.org", role)
    for path in ("/staff", f"/staff/{target}", "/audit"):
        assert console.get(path).status_code == 403, path
    posts = {
        "/staff": {"email": "x@example.org", "role": "admin", "password": "a long password"},
        f"/staff/{target}": {"role": "admin"},
        f"/staff/{target}/active": {"active": "0"},
        f"/staff/{target}/tokens": {"name": "t"},
        f"/staff/{target}/tokens/1/revoke": {},
    }
    for path, form in posts.items():
        assert console.post(path, **form).status_code == 403, path
    changes = ("staff.create", "staff.update", "staff.deactivate", "staff.reactivate", "token.issue", "token.revoke")
    with db.session() as session:
        assert session.execute(select(AuditLog).where(AuditLog.action.in_(changes))).first() is None


def test_anonymous_visitors_are_sent_to_log_in(client):
    for path in ("/staff", "/staff/1", "/audit"):
        assert client.get(path).headers["Location"].startswith("/login"), path


def test_the_audit_page_filters_and_pages_newest_first(admin, db):
    with db.session() as session:
        for n in range(60):
            record(session, "mpho@example.org", "grant.move", "grant", n)
        record(session, "lineo@example.org", "export.report", "report", "sms")
    first = admin.get("/audit?actor=mpho@example.org").get_data(as_text=True)
    objects = re.findall(r"<td>grant:(\d+)</td>", first)
    assert objects == [str(n) for n in range(59, 9, -1)]  # 50 a page, newest first
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "actor=mpho%40example.org" in older or "actor=mpho@example.org" in older
    second = admin.get(older).get_data(as_text=True)
    assert re.findall(r"<td>grant:(\d+)</td>", second) == [str(n) for n in range(9, -1, -1)]
    assert 'rel="next"' not in second
    reports = admin.get("/audit?action=export.report").get_data(as_text=True)
    assert "report:sms" in reports and "grant:" not in reports
    assert "<td>grant:7</td>" in admin.get("/audit?object_type=grant&object_id=7").get_data(as_text=True)
