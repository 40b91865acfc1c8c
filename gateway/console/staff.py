"""Staff accounts for admins: list, create, change role and districts, deactivate and reactivate, API tokens.

Every action is one function of `models.staff_actions` (the same ones the CLI calls), which applies the rules of
`models.staff` (valid e-mail, role, districts, password, and that an admin cannot lock themselves out by demoting or
deactivating their own account) and writes the audit entry in the same transaction.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, get_flashed_messages, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth import current_actor, login_required
from gateway.services import get_services
from models.people import DISTRICTS
from models.staff import MIN_PASSWORD_LENGTH, ApiToken, Role, StaffError, StaffUser
from models.staff_actions import (
    change_staff_access,
    create_staff_account,
    issue_api_token,
    revoke_api_token,
    set_staff_active,
    sign_out_everywhere,
)


def _user_or_404(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    return user


def _render_list(session: Session, status: int = 200, error: str | None = None, form=None):
    users = session.execute(select(StaffUser).order_by(StaffUser.email)).scalars().all()
    page = render_template(
        "staff/list.html",
        users=users,
        roles=list(Role),
        districts=DISTRICTS,
        error=error,
        form=form or {},
        min_password=MIN_PASSWORD_LENGTH,
        notices=get_flashed_messages(),
    )
    return page, status


def _render_detail(session: Session, user: StaffUser, status: int = 200, error: str | None = None, **extra):
    page = render_template(
        "staff/detail.html",
        user=user,
        tokens=list(user.tokens),
        roles=list(Role),
        districts=DISTRICTS,
        error=error,
        notices=get_flashed_messages(),
        **extra,
    )
    return page, status


bp = Blueprint("staff", __name__)


@bp.get("/staff")
@login_required(role=Role.ADMIN)
def staff_list():
    """Every staff account, and the form to create one."""
    with get_services().db.session() as session:
        return _render_list(session)


@bp.post("/staff")
@login_required(role=Role.ADMIN)
def staff_create():
    """Create an account with an initial password the admin passes on; audited as `staff.create`."""
    form = request.form
    try:
        with get_services().db.session() as session:
            user = create_staff_account(
                session,
                current_actor(),
                form.get("email", ""),
                form.get("role", ""),
                form.get("password", ""),
                form.getlist("district"),
            )
            email = user.email
    except StaffError as exc:
        with get_services().db.session() as session:
            return _render_list(session, 400, str(exc), form)
    flash(f"Created {email}. Pass the initial password on to them in person or by phone, never by e-mail.")
    return redirect(url_for("console.staff.staff_list"))


@bp.get("/staff/<int:user_id>")
@login_required(role=Role.ADMIN)
def staff_detail(user_id: int):
    """One account: its role and districts, whether it is active, and its API tokens."""
    with get_services().db.session() as session:
        return _render_detail(session, _user_or_404(session, user_id))


@bp.post("/staff/<int:user_id>")
@login_required(role=Role.ADMIN)
def staff_update(user_id: int):
    """Change role and districts; audited as `staff.update` with the old and new values."""
    with get_services().db.session() as session:
        user = _user_or_404(session, user_id)
        try:
            changes = change_staff_access(
                session, current_actor(), user, request.form.get("role", ""), request.form.getlist("district")
            )
        except StaffError as exc:
            return _render_detail(session, user, 400, str(exc))
        email = user.email
    flash(f"Saved {email}." if changes else "Nothing changed.")
    return redirect(url_for("console.staff.staff_detail", user_id=user_id))


@bp.post("/staff/<int:user_id>/active")
@login_required(role=Role.ADMIN)
def staff_set_active(user_id: int):
    """Deactivate (`active=0`) or reactivate (`active=1`); audited as `staff.deactivate` / `staff.reactivate`."""
    active = request.form.get("active") == "1"
    with get_services().db.session() as session:
        user = _user_or_404(session, user_id)
        try:
            set_staff_active(session, current_actor(), user, active)
        except StaffError as exc:
            return _render_detail(session, user, 400, str(exc))
        email = user.email
    flash(f"{email} is {'active again' if active else 'deactivated: they can no longer log in or use API tokens'}.")
    return redirect(url_for("console.staff.staff_detail", user_id=user_id))


@bp.post("/staff/<int:user_id>/sessions/end")
@login_required(role=Role.ADMIN)
def staff_sign_out(user_id: int):
    """End every console session of the account (a lost laptop, a shared computer); audited as `staff.sign_out`."""
    with get_services().db.session() as session:
        user = _user_or_404(session, user_id)
        sign_out_everywhere(session, current_actor(), user)
        email = user.email
    flash(f"Every console session of {email} has ended.")
    return redirect(url_for("console.staff.staff_detail", user_id=user_id))


@bp.post("/staff/<int:user_id>/tokens")
@login_required(role=Role.ADMIN)
def staff_token_issue(user_id: int):
    """Issue an API token and show it on this one page; only its hash is kept. Audited as `token.issue`."""
    with get_services().db.session() as session:
        user = _user_or_404(session, user_id)
        try:
            token, plaintext = issue_api_token(session, current_actor(), user, request.form.get("name", ""))
        except StaffError as exc:
            return _render_detail(session, user, 400, str(exc))
        page = _render_detail(session, user, new_token=plaintext, new_token_name=token.name)
    response = page[0]
    return response, 201, {"Cache-Control": "no-store"}  # the token must not stay in any cache


@bp.post("/staff/<int:user_id>/tokens/<int:token_id>/revoke")
@login_required(role=Role.ADMIN)
def staff_token_revoke(user_id: int, token_id: int):
    """Revoke a token at once; the row stays for the audit trail. Audited as `token.revoke`."""
    with get_services().db.session() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.staff_user_id != user_id:
            abort(404)
        revoked = revoke_api_token(session, current_actor(), token)
        name = token.name
    flash(f"Token {name!r} is revoked." if revoked else f"Token {name!r} was already revoked.")
    return redirect(url_for("console.staff.staff_detail", user_id=user_id))
