"""Staff accounts, password login with lockout, API tokens and the audit log, on both databases."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.actors import PermissionDeniedError
from models.audit import AuditLog, record
from models.staff import (
    LOCKOUT_DURATION,
    MAX_FAILED_LOGINS,
    ApiToken,
    LoginError,
    LoginFailure,
    Role,
    StaffError,
    StaffUser,
    authenticate,
    create_staff,
    hash_password,
    issue_token,
    parse_districts,
    password_needs_rehash,
    revoke_token,
    user_for_token,
    verify_password,
)
from models.staff_actions import (
    change_staff_access,
    create_staff_account,
    issue_api_token,
    revoke_api_token,
    set_staff_active,
)
from tests.factories import LEGACY_STAFF_PASSWORD_HASH, OPERATOR, STAFF_PASSWORD, make_staff, staff_actor

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def try_login(db, email, password, now=NOW):
    """One login attempt, as the console makes it; returns the user or the LoginError."""
    try:
        return authenticate(db, email, password, now)
    except LoginError as exc:
        return exc


def test_password_hash_round_trip_and_the_hash_is_not_the_password():
    stored = hash_password(STAFF_PASSWORD)
    assert STAFF_PASSWORD not in stored
    assert stored.startswith("scrypt:") and not password_needs_rehash(stored)  # werkzeug's, at werkzeug's cost
    assert verify_password(STAFF_PASSWORD, stored)
    assert not verify_password(STAFF_PASSWORD + "x", stored)
    assert hash_password(STAFF_PASSWORD) != stored  # a fresh salt every time


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$4$5",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$!!$!!",
        "scrypt:x:8:1$salt$key",
        "scrypt:3:8:1$salt$key",
        "pbkdf2:nohash:1$salt$key",
    ],
)
def test_a_malformed_stored_hash_never_matches(stored):
    assert not verify_password("anything at all", stored)


def test_an_old_format_hash_logs_in_and_is_rewritten_in_the_new_format(db):
    user_id = make_staff(db, "mpho@example.org")
    with db.session() as session:
        session.get(StaffUser, user_id).password_hash = LEGACY_STAFF_PASSWORD_HASH
    assert isinstance(try_login(db, "mpho@example.org", STAFF_PASSWORD), StaffUser)
    with db.session() as session:
        rewritten = session.get(StaffUser, user_id).password_hash
    assert rewritten.startswith("scrypt:") and verify_password(STAFF_PASSWORD, rewritten)
    assert isinstance(try_login(db, "mpho@example.org", STAFF_PASSWORD), StaffUser)
    with db.session() as session:
        assert session.get(StaffUser, user_id).password_hash == rewritten  # rewritten once, not at every login


def test_a_wrong_password_against_an_old_hash_fails_and_leaves_the_hash(db):
    user_id = make_staff(db, "mpho@example.org")
    with db.session() as session:
        session.get(StaffUser, user_id).password_hash = LEGACY_STAFF_PASSWORD_HASH
    refused = try_login(db, "mpho@example.org", STAFF_PASSWORD + "x")
    assert isinstance(refused, LoginError) and refused.reason == LoginFailure.WRONG_PASSWORD
    with db.session() as session:
        assert session.get(StaffUser, user_id).password_hash == LEGACY_STAFF_PASSWORD_HASH


def test_create_staff_normalises_email_and_districts(db):
    make_staff(db, "  Mpho.Officer@Example.ORG ", "officer", districts="maseru, LERIBE,maseru")
    with db.session() as session:
        user = session.execute(select(StaffUser)).scalar_one()
        assert (user.email, user.role, user.districts) == ("mpho.officer@example.org", Role.OFFICER, "Leribe,Maseru")
        assert user.active and user.failed_logins == 0 and user.password_hash != STAFF_PASSWORD
        assert user.can_see_district("Maseru") and not user.can_see_district("Berea")


def test_unlimited_accounts_and_admins_see_every_district(db):
    make_staff(db, "viewer@example.org", "viewer")
    make_staff(db, "admin@example.org", "admin")
    with db.session() as session:
        for user in session.execute(select(StaffUser)).scalars():
            assert user.district_list == () and user.can_see_district("Qacha's Nek")


@pytest.mark.parametrize(
    ("email", "role", "password", "districts", "reason"),
    [
        ("a@example.org", "superuser", STAFF_PASSWORD, None, "unknown role"),
        ("a@example.org", "officer", STAFF_PASSWORD, "Maseru,Gauteng", "unknown district 'Gauteng'"),
        ("a@example.org", "officer", "short", None, "at least 10 characters"),
        ("a@example.org", "admin", STAFF_PASSWORD, "Maseru", "an admin sees every district"),
        ("not an address", "officer", STAFF_PASSWORD, None, "is not an e-mail address"),
        ("TAKEN@example.org", "viewer", STAFF_PASSWORD, None, "already a staff account"),
    ],
)
def test_create_staff_refuses_what_it_cannot_keep(db, email, role, password, districts, reason):
    make_staff(db, "taken@example.org")
    with pytest.raises(StaffError, match=reason), db.session() as session:
        create_staff(session, email, role, password, districts)


def test_districts_match_without_regard_to_case_and_keep_the_official_spelling():
    assert parse_districts("mohale's hoek, QACHA'S NEK") == ("Mohale's Hoek", "Qacha's Nek")
    assert parse_districts(["Berea"]) == ("Berea",) and parse_districts("") == () and parse_districts(None) == ()


def test_roles_are_ordered_viewer_officer_admin(db):
    for email, role in (("v@example.org", "viewer"), ("o@example.org", "officer"), ("a@example.org", "admin")):
        make_staff(db, email, role)
    with db.session() as session:
        users = {u.role: u for u in session.execute(select(StaffUser)).scalars()}
    assert [role for role in Role if users["officer"].has_role(role)] == [Role.VIEWER, Role.OFFICER]
    assert all(users["admin"].has_role(role) for role in Role)
    assert not users["viewer"].has_role(Role.OFFICER)


def test_authenticate_returns_the_user_and_notes_the_login(db):
    make_staff(db, "officer@example.org")
    user = try_login(db, "Officer@Example.org", STAFF_PASSWORD)
    assert isinstance(user, StaffUser) and user.email == "officer@example.org"
    with db.session() as session:
        assert session.get(StaffUser, user.id).last_login_at.replace(tzinfo=UTC) == NOW


def test_a_wrong_password_or_unknown_email_is_refused_with_the_reason(db):
    make_staff(db, "officer@example.org")
    wrong = try_login(db, "officer@example.org", "not the password")
    unknown = try_login(db, "nobody@example.org", STAFF_PASSWORD)
    assert (wrong.reason, unknown.reason) == (LoginFailure.WRONG_PASSWORD, LoginFailure.UNKNOWN_EMAIL)
    with db.session() as session:
        assert session.execute(select(StaffUser)).scalar_one().failed_logins == 1


def test_five_wrong_passwords_lock_the_account_until_the_window_ends(db):
    make_staff(db, "officer@example.org")
    for attempt in range(1, MAX_FAILED_LOGINS):
        assert try_login(db, "officer@example.org", "wrong", NOW).reason == LoginFailure.WRONG_PASSWORD, attempt
    locked = try_login(db, "officer@example.org", "wrong", NOW)
    assert locked.reason == LoginFailure.LOCKED
    assert "locked after 5 wrong passwords" in str(locked) and "09:15 UTC" in str(locked)
    # The right password does not open a locked account, up to the last second of the window.
    just_before = NOW + LOCKOUT_DURATION - timedelta(seconds=1)
    assert try_login(db, "officer@example.org", STAFF_PASSWORD, just_before).reason == LoginFailure.LOCKED
    user = try_login(db, "officer@example.org", STAFF_PASSWORD, NOW + LOCKOUT_DURATION)
    assert isinstance(user, StaffUser)
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_a_good_login_resets_the_failure_count(db):
    make_staff(db, "officer@example.org")
    for _ in range(MAX_FAILED_LOGINS - 1):
        try_login(db, "officer@example.org", "wrong")
    assert isinstance(try_login(db, "officer@example.org", STAFF_PASSWORD), StaffUser)
    assert try_login(db, "officer@example.org", "wrong").reason == LoginFailure.WRONG_PASSWORD


def test_an_inactive_account_is_refused_even_with_the_right_password(db):
    make_staff(db, "gone@example.org", active=False)
    refused = try_login(db, "gone@example.org", STAFF_PASSWORD)
    assert refused.reason == LoginFailure.INACTIVE and "disabled" in str(refused)


def test_a_token_is_stored_only_as_its_hash_and_finds_its_user(db):
    user_id = make_staff(db, "officer@example.org")
    with db.session() as session:
        token, plaintext = issue_token(session, session.get(StaffUser, user_id), "reports script")
    assert len(plaintext) >= 43 and token.prefix == plaintext[:8]
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest() != plaintext
    with db.session() as session:
        assert user_for_token(session, plaintext, NOW).id == user_id
        assert user_for_token(session, plaintext + "x", NOW) is None
        assert user_for_token(session, "", NOW) is None


def test_token_use_is_noted_at_most_once_a_minute(db):
    user_id = make_staff(db, "officer@example.org")
    with db.session() as session:
        token, plaintext = issue_token(session, session.get(StaffUser, user_id), "script")

    def last_used_after_use_at(moment):
        with db.session() as session:
            user_for_token(session, plaintext, moment)
        with db.session() as session:
            return session.get(ApiToken, token.id).last_used_at.replace(tzinfo=UTC)

    assert last_used_after_use_at(NOW) == NOW
    assert last_used_after_use_at(NOW + timedelta(seconds=59)) == NOW
    assert last_used_after_use_at(NOW + timedelta(seconds=61)) == NOW + timedelta(seconds=61)


def test_revoked_tokens_and_disabled_accounts_do_not_authenticate(db):
    user_id = make_staff(db, "officer@example.org")
    with db.session() as session:
        user = session.get(StaffUser, user_id)
        revoked, revoked_text = issue_token(session, user, "old")
        _, live_text = issue_token(session, user, "new")
        revoke_token(session, revoked)
    with db.session() as session:
        assert user_for_token(session, revoked_text) is None
        assert user_for_token(session, live_text).id == user_id
        session.get(StaffUser, user_id).active = False
    with db.session() as session:
        assert user_for_token(session, live_text) is None


def test_audit_record_keeps_who_what_and_the_details_as_json(db):
    with db.session() as session:
        record(session, "officer@example.org", "grant.move", "grant", 42, ip="10.0.0.7", to="approved", amount=1500)
    with db.session() as session:
        entry = session.execute(select(AuditLog)).scalar_one()
    assert (entry.actor, entry.action, entry.object_type, entry.object_id, entry.ip) == (
        "officer@example.org",
        "grant.move",
        "grant",
        "42",
        "10.0.0.7",
    )
    assert entry.details_dict == {"to": "approved", "amount": 1500} and entry.at is not None


def test_staff_actions_need_an_admin_and_write_nothing_for_anyone_else(db):
    make_staff(db, "officer@example.org", "officer")
    target = make_staff(db, "viewer@example.org", "viewer")
    with db.session() as session:
        officer = staff_actor(session, "officer@example.org")
        user = session.get(StaffUser, target)
        refused = [
            lambda: create_staff_account(session, officer, "new@example.org", "viewer", STAFF_PASSWORD),
            lambda: change_staff_access(session, officer, user, "admin", None),
            lambda: set_staff_active(session, officer, user, False),
            lambda: issue_api_token(session, officer, user, "script"),
        ]
        for action in refused:
            with pytest.raises(PermissionDeniedError, match="needs the admin role"):
                action()
        assert (user.role, user.active, user.tokens) == ("viewer", True, [])
        assert session.execute(select(AuditLog)).first() is None


def test_every_staff_action_is_audited_through_its_actor(db):
    make_staff(db, "admin@example.org", "admin")
    with db.session() as session:
        admin = staff_actor(session, "admin@example.org", ip="10.0.0.7")
        user = create_staff_account(session, admin, "Lineo@Example.org", "officer", STAFF_PASSWORD, "maseru")
        change_staff_access(session, admin, user, "officer", "Maseru,Berea")
        set_staff_active(session, admin, user, False)
        set_staff_active(session, OPERATOR, user, True)
        token, _ = issue_api_token(session, OPERATOR, user, "reports")
        assert revoke_api_token(session, admin, token) and not revoke_api_token(session, admin, token)
        entries = session.execute(select(AuditLog).order_by(AuditLog.id)).scalars().all()
    assert [(e.action, e.actor, e.ip, e.details_dict["via"]) for e in entries] == [
        ("staff.create", "admin@example.org", "10.0.0.7", "console"),
        ("staff.update", "admin@example.org", "10.0.0.7", "console"),
        ("staff.deactivate", "admin@example.org", "10.0.0.7", "console"),
        ("staff.reactivate", "cli:tester", None, "cli"),
        ("token.issue", "cli:tester", None, "cli"),
        ("token.revoke", "admin@example.org", "10.0.0.7", "console"),
    ]
    assert entries[1].details_dict["districts"] == [["Maseru"], ["Berea", "Maseru"]]


def test_an_operator_may_change_any_account_but_an_admin_not_their_own_access(db):
    only_admin = make_staff(db, "admin@example.org", "admin")
    with db.session() as session:
        admin = staff_actor(session, "admin@example.org")
        user = session.get(StaffUser, only_admin)
        with pytest.raises(StaffError, match="your own account"):
            set_staff_active(session, admin, user, False)
        with pytest.raises(StaffError, match="admin role from your own account"):
            change_staff_access(session, admin, user, "officer", None)
        set_staff_active(session, OPERATOR, user, False)
        assert change_staff_access(session, OPERATOR, user, "officer", None) == {"role": ["admin", "officer"]}


def test_a_parallel_burst_of_wrong_passwords_gets_only_the_allowed_tries_checked(db):
    """Threads guessing at once on PostgreSQL: each try is counted before its password is checked, in one atomic
    UPDATE, so only MAX_FAILED_LOGINS passwords are checked, whatever the timing, and no try goes uncounted."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    make_staff(db, "officer@example.org")
    burst = 3 * MAX_FAILED_LOGINS
    start = threading.Barrier(burst)

    def guess(number: int) -> LoginError:
        start.wait()
        return try_login(db, "officer@example.org", f"guess number {number}")

    with ThreadPoolExecutor(max_workers=burst) as pool:
        reasons = [refusal.reason for refusal in pool.map(guess, range(burst))]
    assert reasons.count(LoginFailure.WRONG_PASSWORD) == MAX_FAILED_LOGINS - 1
    assert reasons.count(LoginFailure.LOCKED) == burst - (MAX_FAILED_LOGINS - 1)
    with db.session() as session:
        user = session.execute(select(StaffUser)).scalar_one()
        assert user.failed_logins == burst and user.locked_until is not None
    assert try_login(db, "officer@example.org", STAFF_PASSWORD).reason == LoginFailure.LOCKED
