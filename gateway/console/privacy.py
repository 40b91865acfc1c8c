"""A person's data in the console, for admins: export it as one JSON document, erase it (retyping the reference),
and decide the erasure requests people made by USSD or SMS.

The handlers call `notifications.casework.privacy` and `notifications.casework.erasure_requests`, which hold the
rules and write the audit entries.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from gateway.auth import current_actor, login_required
from gateway.services import get_services
from models.staff import Role
from notifications.casework.erasure_requests import (
    MAX_DECLINE_REASON_LENGTH,
    ErasureRequestError,
    confirm_erasure_request,
    decline_erasure_request,
    open_erasure_requests,
)
from notifications.casework.privacy import PrivacyError, erase_person, export_person
from notifications.sms.queues import kick

bp = Blueprint("privacy", __name__)

# The longest erasure reason the form takes; the audit log keeps it.
MAX_ERASURE_REASON_LENGTH = 500


@bp.get("/beneficiaries/<reference>/export.json")
@login_required(role=Role.ADMIN)
def export(reference: str):
    """Everything held about the person, as a download that no browser or proxy may keep a copy of."""
    try:
        with get_services().db.session() as session:
            document = export_person(session, current_actor(), reference)
    except PrivacyError as exc:
        abort(404, description=str(exc))
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="person-{document["reference"]}.json"',
            "Cache-Control": "no-store",
        },
    )


def _erase_page(reference: str, error: str | None = None, status_code: int = 200):
    return render_template(
        "privacy/erase.html", reference=reference, error=error, max_reason=MAX_ERASURE_REASON_LENGTH
    ), status_code


@bp.get("/beneficiaries/<reference>/erase")
@login_required(role=Role.ADMIN)
def erase_form(reference: str):
    return _erase_page(reference)


@bp.post("/beneficiaries/<reference>/erase")
@login_required(role=Role.ADMIN)
def erase(reference: str):
    """Erase once the admin has retyped the reference and said why; nothing changes otherwise."""
    if request.form.get("confirm_reference", "").strip() != reference:
        return _erase_page(reference, "Type the reference exactly as shown to confirm.", 400)
    reason = request.form.get("reason", "").strip()
    if len(reason) > MAX_ERASURE_REASON_LENGTH:
        return _erase_page(reference, f"The reason is longer than {MAX_ERASURE_REASON_LENGTH} characters.", 400)
    services = get_services()
    try:
        with services.db.session() as session:
            erasure = erase_person(session, services.redis, current_actor(), reference, reason)
    except PrivacyError as exc:
        return _erase_page(reference, str(exc), 400)
    flash(f"Erased {erasure.reference}: {erasure.messages_cancelled} pending SMS cancelled.")
    return redirect(url_for("console.beneficiaries.beneficiary", reference=reference))


@bp.get("/privacy/requests")
@login_required(role=Role.ADMIN)
def erasure_requests(error: str | None = None, status_code: int = 200):
    """Open requests, oldest first: call the person back on the number on record before confirming."""
    with get_services().db.session() as session:
        requests = open_erasure_requests(session, current_actor())
    return render_template(
        "privacy/requests.html", requests=requests, error=error, max_reason=MAX_DECLINE_REASON_LENGTH
    ), status_code


@bp.post("/privacy/requests/<int:request_id>/confirm")
@login_required(role=Role.ADMIN)
def confirm(request_id: int):
    services = get_services()
    try:
        with services.db.session() as session:
            notice = confirm_erasure_request(session, services.redis, current_actor(), request_id)
            priority = notice.priority
    except (ErasureRequestError, PrivacyError) as exc:
        return erasure_requests(error=str(exc), status_code=409)
    kick(services.redis, priority)
    flash(f"Request {request_id} confirmed: the person is erased and will get an SMS.")
    return redirect(url_for("console.privacy.erasure_requests"))


@bp.post("/privacy/requests/<int:request_id>/decline")
@login_required(role=Role.ADMIN)
def decline(request_id: int):
    try:
        with get_services().db.session() as session:
            decline_erasure_request(session, current_actor(), request_id, request.form.get("reason", ""))
    except ErasureRequestError as exc:
        return erasure_requests(error=str(exc), status_code=400)
    flash(f"Request {request_id} declined.")
    return redirect(url_for("console.privacy.erasure_requests"))
