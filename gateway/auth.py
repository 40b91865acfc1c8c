"""Who is asking: staff sessions for the console (cookie + CSRF token) and bearer tokens for the JSON API.

The console keeps the staff member's id in Flask's signed session cookie, together with a fingerprint of their
password hash, the account's session generation and the login time: a password change, a deactivation or an
admin's "sign out everywhere" ends every other session, and no session outlives STAFF_SESSION_MAX_HOURS. Every
unsafe request outside the API and the webhooks must carry the session's CSRF token. The API never reads the
cookie, only `Authorization: Bearer <token>`, so a forged cross-site request has nothing to ride on and the API
needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from flask import Flask, Response, abort, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from config import Settings
from config.metrics import LOGIN_FAILURES
from config.settings import DEVELOPMENT, TEST
from gateway.addresses import caller_address
from gateway.services import get_services
from models.actors import Actor, Via
from models.audit import record
from models.base import utcnow
from models.staff import LoginError, LoginFailure, Role, StaffUser, authenticate, token_in_use
from notifications.sms.number_limits import LOGIN_ACCOUNT, LOGIN_ADDRESS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Paths whose unsafe requests need no CSRF token: the API authenticates by bearer token, never by cookie, and the
# provider's callbacks carry their own token.
CSRF_EXEMPT_PREFIXES = ("/api/", "/webhooks/")
# Paths that never read or write the staff cookie: Flask gives them an empty read-only session instead of
# verifying the cookie's signature on every request (a USSD hop has no cookie, and should not pay for one).
COOKIELESS_PREFIXES = ("/api/", "/webhooks/")
CSRF_FIELD = "csrf_token"  # hidden form field
CSRF_HEADER = "X-CSRF-Token"  # for the odd script that posts to the console
CSRF_TOKEN_BYTES = 32
CSRF_ERROR = "This form has expired or did not come from this site. Go back, reload the page and try again."

SESSION_STAFF_ID = "staff_id"
SESSION_FINGERPRINT = "staff_fingerprint"
SESSION_CSRF = "csrf_token"
SESSION_GENERATION = "staff_generation"
SESSION_STARTED = "staff_started"  # when the login happened, seconds since the epoch (UTC)
# A console session left idle this long ends (the cookie's expiry, renewed by every request);
# STAFF_SESSION_MAX_HOURS ends it however busy it is.
STAFF_SESSION_LIFETIME = timedelta(hours=12)
FINGERPRINT_LENGTH = 16
LOGIN_ENDPOINT = "console.auth.login"


def init_app(app: Flask, settings: Settings) -> None:
    """Cookie flags, the CSRF check, and `csrf_token()` / `staff` in every template."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Development and tests run on plain http://localhost; everywhere else the cookie never travels unencrypted.
        SESSION_COOKIE_SECURE=settings.app_env not in (DEVELOPMENT, TEST),
        PERMANENT_SESSION_LIFETIME=STAFF_SESSION_LIFETIME,
    )
    app.session_interface = StaffCookieSessions()
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(_template_context)


class StaffCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions for the console only; see `COOKIELESS_PREFIXES`."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(COOKIELESS_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _template_context() -> dict:
    """`staff` in templates: whoever this request's view authenticated, else None (the base layout's header)."""
    return {"staff": g.get("staff")}


# --- CSRF ----------------------------------------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's CSRF token, made on first use; forms put it in a hidden `csrf_token` field."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
    return token


def check_csrf() -> None:
    """Refuse (400) an unsafe request without the session's CSRF token, except under the API and the webhooks."""
    if request.method in SAFE_METHODS or request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    if request.routing_exception is not None:
        return  # no view will run: let the 404 or 405 answer, rather than a misleading CSRF error
    expected = session.get(SESSION_CSRF, "")
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not (expected and sent and hmac.compare_digest(sent.encode(), expected.encode())):
        abort(400, description=CSRF_ERROR)


# --- console sessions ----------------------------------------------------------------------------------------------


def _fingerprint(user: StaffUser) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def client_ip() -> str | None:
    """The caller's address, for the audit log and the login throttle: behind a trusted proxy, the address it
    forwarded (`gateway.addresses`), not the proxy's own."""
    return caller_address(get_services().settings)


def _throttled(email: str) -> bool:
    """Count this login try against the caller's address and the account tried; True past either limit. Per
    address, so that one password sprayed over many accounts is slowed; per account, so that many addresses
    cannot share out the guesses at one account. In Redis: every web process counts the same tries."""
    limits = get_services().limits
    return not (
        limits.allow(LOGIN_ADDRESS, client_ip() or "unknown") and limits.allow(LOGIN_ACCOUNT, email.strip().lower())
    )


def log_in(email: str, password: str) -> StaffUser:
    """Check the password, write the attempt to the audit log, and start a fresh session; raises LoginError."""
    database = get_services().db
    try:
        if _throttled(email):
            raise LoginError(LoginFailure.THROTTLED, "too many login tries from this address or at this account")
        user = authenticate(database, email, password, utcnow())
    except LoginError as exc:
        with database.session() as db_session:
            record(
                db_session, email.strip().lower(), "staff.login_failed", "staff_user", ip=client_ip(), reason=exc.reason
            )
        LOGIN_FAILURES.labels(reason=exc.reason).inc()
        raise
    with database.session() as db_session:
        record(db_session, user.email, "staff.login", "staff_user", user.id, ip=client_ip())
    # A new session on login, so that a session id planted before it (fixation) is worth nothing.
    session.clear()
    session.permanent = True
    session[SESSION_STAFF_ID] = user.id
    session[SESSION_STARTED] = int(utcnow().timestamp())
    keep_session(user)
    csrf_token()
    g.staff = user
    return user


def keep_session(user: StaffUser) -> None:
    """Carry this session over to the account's current password and generation: after the owner's own password
    change, their other sessions end and this one goes on."""
    session[SESSION_FINGERPRINT] = _fingerprint(user)
    session[SESSION_GENERATION] = user.session_generation or 0


def log_out() -> None:
    session.clear()
    g.pop("staff", None)


def current_staff() -> StaffUser | None:
    """The staff member this request's session belongs to, if the account is still active and its password unchanged."""
    if "staff" in g:
        return g.staff
    user = None
    staff_id = session.get(SESSION_STAFF_ID)
    if staff_id is not None:
        with get_services().db.session() as db_session:
            user = db_session.get(StaffUser, staff_id)
        if user is None or not _session_valid(user):
            for key in (SESSION_STAFF_ID, SESSION_FINGERPRINT, SESSION_GENERATION, SESSION_STARTED):
                session.pop(key, None)
            user = None
    g.staff = user
    return user


def _session_valid(user: StaffUser) -> bool:
    """The account is active, its password and generation are those the session began under, and the session is
    younger than STAFF_SESSION_MAX_HOURS."""
    started = session.get(SESSION_STARTED)
    max_age = timedelta(hours=get_services().settings.staff_session_max_hours).total_seconds()
    return (
        user.active
        and session.get(SESSION_FINGERPRINT) == _fingerprint(user)
        and session.get(SESSION_GENERATION) == (user.session_generation or 0)
        and isinstance(started, int)
        and 0 <= utcnow().timestamp() - started < max_age
    )


def login_required(view: Callable | None = None, *, role: Role | str = Role.VIEWER) -> Callable:
    """Console views: anonymous visitors go to the login page; a role below `role` gets 403.

    Use bare (`@login_required`, any role) or with a role (`@login_required(role=Role.OFFICER)`).
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_staff()
            if user is None:
                return redirect(url_for(LOGIN_ENDPOINT, next=request.full_path.rstrip("?")))
            if not user.has_role(role):
                abort(403, description=f"This page needs the {Role(role)} role; you are {user.role}.")
            return view(*args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate


def safe_next(target: str | None) -> str | None:
    """A `next` address to go to after login, only if it stays on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target


# --- API tokens ----------------------------------------------------------------------------------------------------


def json_error(status: int, message: str) -> Response:
    """The API's error shape: `{"error": "..."}` with the status; 401 also says which scheme to use."""
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def token_required(view: Callable | None = None, *, role: Role | str = Role.VIEWER) -> Callable:
    """API views: a live bearer token of an active account, else JSON 401; a role below `role` gets JSON 403.

    Use bare (`@token_required`) or with a role (`@token_required(role=Role.ADMIN)`). The cookie is never read.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            authorization = request.authorization
            if authorization is None or authorization.type != "bearer" or not authorization.token:
                return json_error(401, "missing bearer token: send Authorization: Bearer <token>")
            with get_services().db.session() as db_session:
                token = token_in_use(db_session, authorization.token, utcnow())
                user = token.staff_user if token is not None else None
            if user is None:
                return json_error(401, "invalid, revoked or disabled token")
            if not user.has_role(role):
                return json_error(403, f"this needs the {Role(role)} role; the token's account is {user.role}")
            g.staff = user
            g.api_token = token
            return view(*args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate


def current_actor() -> Actor:
    """The `Actor` of this request, for a domain function: the console's staff member, or the API token's account.

    Only inside views behind `login_required` or `token_required`, which make sure there is one.
    """
    token = g.get("api_token")
    via = Via.API if token is not None else Via.CONSOLE
    return Actor.for_staff(g.staff, via, ip=client_ip(), token=token)
