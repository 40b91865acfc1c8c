"""The duplicate-ID review: registrations held because their national ID was taken, for officers and admins.

Each held registration is shown beside the beneficiary who holds the ID (IDs masked), within the staff member's
districts; they register it under a corrected ID or dismiss it. The rules and the audit entries live in
`notifications.casework.duplicates`.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, get_flashed_messages, redirect, render_template, request, url_for

from gateway.auth import current_actor, login_required
from gateway.services import get_services
from models.actors import PermissionDeniedError
from models.messages import MessagePriority
from models.staff import Role
from notifications.casework.duplicates import (
    HeldRegistrationError,
    dismiss_held,
    duplicate_review,
    register_held,
)
from notifications.sms.queues import kick

bp = Blueprint("duplicates", __name__)


def _render(status: int = 200, error: str | None = None):
    with get_services().db.session() as session:
        page = render_template(
            "duplicates/list.html",
            pairs=duplicate_review(session, current_actor()),
            error=error,
            notices=get_flashed_messages(),
        )
    return page, status


@bp.get("/duplicates")
@login_required(role=Role.OFFICER)
def duplicate_list():
    """Every held registration in the staff member's districts, beside the record that holds its ID."""
    return _render()


@bp.post("/duplicates/<int:held_id>/register")
@login_required(role=Role.OFFICER)
def duplicate_register(held_id: int):
    """Register the held one under a corrected ID (empty: without an ID); the returnee gets the usual SMS."""
    try:
        with get_services().db.session() as session:
            reference = register_held(
                session,
                current_actor(),
                held_id,
                request.form.get("national_id", ""),
                max_per_phone=get_services().settings.max_beneficiaries_per_phone,
            )
    except PermissionDeniedError:
        abort(404)
    except HeldRegistrationError as exc:
        return _render(400, str(exc))
    kick(get_services().redis, MessagePriority.TRANSACTIONAL)
    flash(f"Registered as reference {reference}.")
    return redirect(url_for("console.duplicates.duplicate_list"))


@bp.post("/duplicates/<int:held_id>/dismiss")
@login_required(role=Role.OFFICER)
def duplicate_dismiss(held_id: int):
    """Dismiss the held registration, with a reason."""
    try:
        with get_services().db.session() as session:
            dismiss_held(session, current_actor(), held_id, request.form.get("reason", ""))
    except PermissionDeniedError:
        abort(404)
    except HeldRegistrationError as exc:
        return _render(400, str(exc))
    flash("Dismissed.")
    return redirect(url_for("console.duplicates.duplicate_list"))
