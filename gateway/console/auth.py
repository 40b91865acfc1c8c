"""Login and logout. The handlers parse the form and call `gateway.auth`; the rules live there."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, url_for

from gateway.auth import current_staff, log_in, log_out, safe_next
from models.staff import LOCKOUT_DURATION, MAX_EMAIL_LENGTH, MAX_FAILED_LOGINS, MAX_PASSWORD_LENGTH, LoginError

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
