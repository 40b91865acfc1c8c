"""Login, logout and one's own password. The handlers parse the form and call `gateway.auth` or
`models.staff_actions`; the rules live there."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, get_flashed_messages, redirect, render_template, request, url_for

from gateway.auth import current_actor, current_staff, keep_session, log_in, log_out, login_required, safe_next
from gateway.services import get_services
from models.staff import (
    LOCKOUT_DURATION,
    MAX_EMAIL_LENGTH,
    MAX_FAILED_LOGINS,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    LoginError,
    StaffError,
)
from models.staff_actions import change_own_password

log = logging.getLogger(__name__)

# One answer for every refused login, so that the form does not tell which e-mail addresses have accounts.
LOGIN_FAILED_MESSAGE = (
    f"Wrong e-mail or password. After {MAX_FAILED_LOGINS} wrong tries an account is locked for "
    f"{int(LOCKOUT_DURATION.total_seconds() // 60)} minutes."
)


bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; on success, back to the page that asked for a login (or the start page)."""
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(next_page or url_for("console.dashboard.dashboard"))
        return render_template("login.html", next_page=next_page, email="")
    email = request.form.get("email", "")[: MAX_EMAIL_LENGTH + 1]
    password = request.form.get("password", "")[: MAX_PASSWORD_LENGTH + 1]
    try:
        log_in(email, password)
    except LoginError as exc:
        log.info("refused login: %s", exc.reason)
        return render_template("login.html", next_page=next_page, email=email, error=LOGIN_FAILED_MESSAGE)
    return redirect(next_page or url_for("console.dashboard.dashboard"))


@bp.post("/logout")
def logout():
    log_out()
    return redirect(url_for("console.auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password (the current one needed). Every other session of the account ends; this one goes
    on. Audited as `staff.password_change`."""
    if request.method == "GET":
        return _password_page()
    form = request.form
    if form.get("new_password", "") != form.get("repeat_password", ""):
        return _password_page("The two new passwords differ.", 400)
    try:
        with get_services().db.session() as session:
            user = change_own_password(
                session,
                current_actor(),
                form.get("current_password", "")[: MAX_PASSWORD_LENGTH + 1],
                form.get("new_password", "")[: MAX_PASSWORD_LENGTH + 1],
            )
    except StaffError as exc:
        return _password_page(str(exc).capitalize() + ".", 400)
    keep_session(user)
    flash("Your password is changed. Every other session of your account has ended.")
    return redirect(url_for("console.auth.change_password"))


def _password_page(error: str | None = None, status: int = 200):
    page = render_template(
        "account/password.html", error=error, min_password=MIN_PASSWORD_LENGTH, notices=get_flashed_messages()
    )
    return page, status
