"""Corrections in the console, for officers: a beneficiary's answers, and the move to a returnee's new number.

The handlers call `menus.corrections`, which checks each value with the registration form's own rules, applies
the district limits and writes the audit entry.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from gateway.auth import current_actor, login_required
from gateway.services import get_services
from menus.corrections import (
    CorrectionError,
    CorrectionNotFoundError,
    IdentityCheck,
    correct_beneficiary,
    move_to_new_number,
)
from models.corrections import CORRECTABLE_FIELDS
from models.people import DISTRICTS, MainNeed, Sex
from models.search import find_visible_beneficiary
from models.staff import Role
from notifications.sms.queues import kick

bp = Blueprint("corrections", __name__)

CHOICES = {"sex": list(Sex), "district": list(DISTRICTS), "main_need": list(MainNeed)}


def _page(template: str, reference: str, error: str | None = None, status_code: int = 200, values=None):
    with get_services().db.session() as session:
        beneficiary = find_visible_beneficiary(session, current_actor().staff, reference)
        if beneficiary is None:
            abort(404, description=f"No beneficiary with reference {reference} in your districts.")
        current = {name: getattr(beneficiary, name) or "" for name in CORRECTABLE_FIELDS}
    return render_template(
        template,
        reference=reference,
        values=values or current,
        fields=CORRECTABLE_FIELDS,
        choices=CHOICES,
        checks=list(IdentityCheck),
        error=error,
    ), status_code


@bp.get("/beneficiaries/<reference>/correct")
@login_required(role=Role.OFFICER)
def correct_form(reference: str):
    return _page("corrections/correct.html", reference)


@bp.post("/beneficiaries/<reference>/correct")
@login_required(role=Role.OFFICER)
def correct(reference: str):
    changes = {name: request.form[name] for name in CORRECTABLE_FIELDS if name in request.form}
    try:
        with get_services().db.session() as session:
            correction = correct_beneficiary(session, current_actor(), reference, changes)
    except CorrectionNotFoundError:
        abort(404, description=f"No beneficiary with reference {reference} in your districts.")
    except CorrectionError as exc:
        return _page("corrections/correct.html", reference, str(exc), 400, values=changes)
    flash(f"Corrected: {', '.join(correction.changed)}." if correction.changed else "Nothing changed.")
    return redirect(url_for("console.beneficiaries.beneficiary", reference=reference))


@bp.get("/beneficiaries/<reference>/number")
@login_required(role=Role.OFFICER)
def number_form(reference: str):
    return _page("corrections/number.html", reference)


@bp.post("/beneficiaries/<reference>/number")
@login_required(role=Role.OFFICER)
def move_number(reference: str):
    form = request.form
    services = get_services()
    try:
        with services.db.session() as session:
            move = move_to_new_number(
                session,
                services.redis,
                current_actor(),
                reference,
                form.get("new_phone", ""),
                form.get("check", ""),
                national_id=form.get("national_id"),
            )
            priority = move.notices[0].priority
    except CorrectionNotFoundError:
        abort(404, description=f"No beneficiary with reference {reference} in your districts.")
    except CorrectionError as exc:
        return _page("corrections/number.html", reference, str(exc), 400)
    kick(services.redis, priority)
    flash("Moved to the new number; both numbers will get an SMS.")
    return redirect(url_for("console.beneficiaries.beneficiary", reference=reference))
