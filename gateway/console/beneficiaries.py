"""Beneficiaries in the console: search and filter, one person's page, grant moves, CSV export, payment imports.

The handlers parse the form, call `models.search` or `notifications.casework.payments`, and render; who may see which
district, how a grant moves and what an import checks all live there. Every page works without JavaScript.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, stream_with_context, url_for

from gateway.auth import client_ip, current_actor, login_required
from gateway.services import get_services
from menus.texts import menu_catalogue
from models.actors import Actor, PermissionDeniedError
from models.answers import FIELDS, NATIONAL_ID, AnswersError
from models.audit import record
from models.grants import (
    MAX_PAYMENT_REFERENCE_LENGTH,
    MAX_REASON_LENGTH,
    REASON_REQUIRED,
    TRANSITIONS,
    GrantError,
    GrantRules,
    GrantStatus,
    IllegalTransitionError,
    PaymentChannel,
    parse_amount,
)
from models.people import DISTRICTS, ConsentChannel, Language, Sex
from models.phone import mask_national_id, mask_phone
from models.registration import AlreadyRegisteredError, HouseholdFullError, NationalIdTakenError
from models.search import (
    BeneficiaryFilters,
    SearchError,
    beneficiary_record,
    count_beneficiaries,
    find_visible_beneficiary,
    iter_beneficiaries,
    parse_cursor,
    parse_filters,
    search_beneficiaries_for,
)
from models.spreadsheet import csv_writer
from models.staff import Role, StaffUser
from notifications.casework.grants import GrantNotFoundError, move_grant_for
from notifications.casework.payments import (
    PAYMENT_COLUMNS,
    PaymentImportError,
    PaymentImportRefused,
    apply_payment_results,
    check_payment_results,
)
from notifications.casework.registration import (
    ALREADY_REGISTERED,
    HOUSEHOLD_FULL,
    NATIONAL_ID_TAKEN,
    after_registration,
    parse_walk_in,
    register_beneficiary_for,
)
from notifications.sms.queues import kick

# The order grant moves are offered in on a beneficiary's page: the usual next step first, withdrawal last.
MOVE_ORDER = tuple(GrantStatus)
# What each move asks for besides the reason; models.grants.move_grant refuses a move without what it needs.
AMOUNT_MOVES = frozenset({GrantStatus.APPROVED})
CHANNEL_MOVES = frozenset({GrantStatus.PAYMENT_SCHEDULED})
PAYMENT_REFERENCE_MOVES = frozenset({GrantStatus.PAID, GrantStatus.PAYMENT_FAILED})
EXPORT_COLUMNS = (
    "reference",
    "full_name",
    "sex",
    "year_of_birth",
    "district",
    "village",
    "phone",
    "language",
    "alerts_on",
    "national_id",
    "grant_status",
    "grant_amount",
    "registered_at",
)
EXPORT_FILENAME = "beneficiaries.csv"


def _shown_phone(staff: StaffUser, phone: str | None) -> str:
    """Viewers read records but never call or text anyone, so they see a masked number."""
    return (phone or "-") if staff.has_role(Role.OFFICER) else mask_phone(phone)


def _filter_choices() -> dict:
    return {
        "districts": DISTRICTS,
        "sexes": list(Sex),
        "statuses": list(GrantStatus),
        "languages": list(Language),
    }


bp = Blueprint("beneficiaries", __name__)


@bp.get("/beneficiaries")
@login_required
def beneficiaries():
    """The searchable, filterable list, 50 rows a page, newest registrations first."""
    staff: StaffUser = g.staff
    error = None
    try:
        filters = parse_filters(request.args)
        after = parse_cursor(request.args.get("after"))
    except SearchError as exc:
        filters, after, error = BeneficiaryFilters(), None, str(exc)
    try:
        with get_services().db.session() as session:
            page = search_beneficiaries_for(session, current_actor(), filters, after=after)
    except PermissionDeniedError as exc:
        abort(403, description=str(exc))
    return render_template(
        "beneficiaries/list.html",
        page=page,
        filters=filters,
        error=error,
        paged=after is not None,
        shown_phone=lambda phone: _shown_phone(staff, phone),
        mask_national_id=mask_national_id,
        can_export=staff.has_role(Role.OFFICER),
        **_filter_choices(),
    ), (400 if error else 200)


@bp.get("/beneficiaries/export.csv")
@login_required(role=Role.OFFICER)
def export_beneficiaries():
    """The whole filtered list as CSV, streamed. Personal data leaves the system: the audit log says who took what.

    National IDs stay masked, as in the list: verification happens on the beneficiary's page, not in spreadsheets.
    """
    staff: StaffUser = g.staff
    try:
        filters = parse_filters(request.args)
    except SearchError as exc:
        abort(400, description=str(exc))
    db = get_services().db
    with db.session() as session:
        rows = count_beneficiaries(session, staff, filters)
        params = filters.for_audit()
        record(session, staff.email, "export.beneficiaries", "beneficiary", ip=client_ip(), rows=rows, **params)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        with db.session() as session:
            for row in iter_beneficiaries(session, staff, filters):
                writer.writerow(
                    (
                        row.reference,
                        row.full_name,
                        row.sex,
                        row.year_of_birth,
                        row.district,
                        row.village,
                        row.phone,
                        row.language or "",
                        "yes" if row.alerts_on else "no",
                        mask_national_id(row.national_id) if row.national_id else "",
                        row.grant_status or "",
                        row.grant_amount if row.grant_amount is not None else "",
                        row.registered_at.isoformat(),
                    )
                )
                if buffer.tell() > io.DEFAULT_BUFFER_SIZE:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"'},
    )


def _moves_offered(status: str) -> list[GrantStatus]:
    allowed = TRANSITIONS[GrantStatus(status)]
    return [target for target in MOVE_ORDER if target in allowed]


def _render_beneficiary(reference: str, error: str | None = None, status_code: int = 200):
    staff: StaffUser = g.staff
    with get_services().db.session() as session:
        beneficiary = find_visible_beneficiary(session, staff, reference)
        if beneficiary is None:
            abort(404, description=f"No beneficiary with reference {reference} in your districts.")
        found = beneficiary_record(session, beneficiary)
    can_move = staff.has_role(Role.OFFICER)
    return render_template(
        "beneficiaries/detail.html",
        record=found,
        b=found.beneficiary,
        moves=_moves_offered(found.grant.status) if found.grant is not None and can_move else [],
        reason_required=REASON_REQUIRED,
        amount_moves=AMOUNT_MOVES,
        channel_moves=CHANNEL_MOVES,
        payment_reference_moves=PAYMENT_REFERENCE_MOVES,
        channels=list(PaymentChannel),
        max_reason=MAX_REASON_LENGTH,
        max_payment_reference=MAX_PAYMENT_REFERENCE_LENGTH,
        shown_phone=lambda phone: _shown_phone(staff, phone),
        national_id=found.beneficiary.national_id if can_move else mask_national_id(found.beneficiary.national_id),
        error=error,
    ), status_code


@bp.get("/beneficiaries/<reference>")
@login_required
def beneficiary(reference: str):
    """One person: profile, grant and its timeline, every SMS, USSD sessions, call-backs and feedback."""
    return _render_beneficiary(reference)


@bp.post("/beneficiaries/<reference>/grant")
@login_required(role=Role.OFFICER)
def move_grant(reference: str):
    """Move the grant one legal step; on a refusal the page comes back with the reason and nothing changed."""
    form = request.form
    try:
        amount = parse_amount(form["amount"]) if form.get("amount", "").strip() else None
        with get_services().db.session() as session:
            event, notice = move_grant_for(
                session,
                current_actor(),
                reference,
                form.get("status", ""),
                rules=GrantRules.of(get_services().settings),
                reason=form.get("reason"),
                amount=amount,
                channel=form.get("channel"),
                payment_reference=form.get("payment_reference"),
            )
            new_status = event.to_status
    except GrantNotFoundError:
        abort(404, description=f"No beneficiary with reference {reference} in your districts.")
    except IllegalTransitionError as exc:
        return _render_beneficiary(reference, error=str(exc), status_code=409)
    except GrantError as exc:
        return _render_beneficiary(reference, error=str(exc), status_code=400)
    if notice is not None:
        kick(get_services().redis, notice.priority)
    flash(f"Grant moved to {new_status}." + (" The returnee will get an SMS." if notice is not None else ""))
    return redirect(url_for("console.beneficiaries.beneficiary", reference=reference))


# --- walk-in registration -----------------------------------------------------------------------------------------

# The walk-in form's fields, in the order of the USSD questions, then the person's SMS language and phone.
WALK_IN_FORM_FIELDS = (*(answer.name for answer in FIELDS), "language", "phone")
# The checkbox an officer ticks once the person has agreed in front of them.
CONSENT_GIVEN = "yes"


def _walk_in_choices(actor: Actor) -> dict[str, list[tuple[str, str]]]:
    """(value, label) of each choice on the form, labelled as the English USSD screens label them; a district-limited
    officer is offered only their districts."""
    catalogue = menu_catalogue()
    choices = {
        answer.name: [
            (str(value), catalogue.get(f"registration.{answer.name}_{value}", Language.ENGLISH))
            for value in answer.choices
        ]
        for answer in FIELDS
        if answer.choices and answer.name != "district"
    }
    choices["district"] = [(district, district) for district in DISTRICTS if actor.can_see_district(district)]
    choices["language"] = [(str(lang), catalogue.get(f"language.{lang}", Language.ENGLISH)) for lang in Language]
    return choices


def _walk_in_page(values: dict, errors: dict[str, str] | None = None, error: str | None = None, status_code=200):
    return render_template(
        "beneficiaries/register.html",
        fields=WALK_IN_FORM_FIELDS,
        optional={NATIONAL_ID, "phone"},
        choices=_walk_in_choices(current_actor()),
        values=values,
        errors=errors or {},
        error=error,
        consent_value=CONSENT_GIVEN,
    ), status_code


@bp.get("/beneficiaries/new")
@login_required(role=Role.OFFICER)
def register_form():
    """The walk-in form: the USSD registration's questions, for an officer with the person in front of them."""
    return _walk_in_page({"language": Language.SESOTHO})


@bp.post("/beneficiaries/new")
@login_required(role=Role.OFFICER)
def register():
    """Register the walk-in; on a refusal the form comes back with each field's reason beside it, nothing stored."""
    values = {name: request.form.get(name, "") for name in WALK_IN_FORM_FIELDS}
    raw = {**values, "consent": request.form.get("consent") == CONSENT_GIVEN}
    try:
        walk_in = parse_walk_in(raw)
    except AnswersError as exc:
        return _walk_in_page(values, exc.errors, "Nothing was saved: check the fields marked below.", 400)
    services = get_services()
    try:
        with services.db.session() as session:
            registration = register_beneficiary_for(
                session,
                current_actor(),
                walk_in.answers,
                phone=walk_in.phone,
                language=walk_in.language,
                consent=ConsentChannel.IN_PERSON,
                max_per_phone=services.settings.max_beneficiaries_per_phone,
            )
    except PermissionDeniedError as exc:
        return _walk_in_page(values, {"district": str(exc)}, "Nothing was saved.", 403)
    except AlreadyRegisteredError:
        return _walk_in_page(values, {"phone": ALREADY_REGISTERED}, "Nothing was saved.", 400)
    except HouseholdFullError as full:
        return _walk_in_page(values, {"phone": HOUSEHOLD_FULL.format(limit=full.limit)}, "Nothing was saved.", 400)
    except NationalIdTakenError:
        return _walk_in_page(values, {NATIONAL_ID: NATIONAL_ID_TAKEN}, "Nothing was saved.", 400)
    after_registration(services.redis, registration)
    told = (
        "The confirmation SMS is on its way."
        if registration.phone
        else "No phone: give the person their reference; notices that cannot be sent are listed below."
    )
    flash(f"Registered {registration.first_name} with reference {registration.reference}. {told}")
    return redirect(url_for("console.beneficiaries.beneficiary", reference=registration.reference))


# --- payment results -----------------------------------------------------------------------------------------------


@bp.get("/payments/import")
@login_required(role=Role.OFFICER)
def payments_import():
    return render_template("beneficiaries/import.html", columns=PAYMENT_COLUMNS, report=None)


@bp.post("/payments/import")
@login_required(role=Role.OFFICER)
def payments_check():
    """The dry run: the uploaded file is checked row by row and nothing changes; the page offers to apply it."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(error="Choose a CSV file to check.", status_code=400)
    content = upload.read()
    try:
        with get_services().db.session() as session:
            report = check_payment_results(
                session, current_actor(), content, rules=GrantRules.of(get_services().settings)
            )
    except PaymentImportError as exc:
        return _import_page(error=str(exc), status_code=400)
    return _import_page(report=report, content=content.decode("utf-8-sig"), filename=upload.filename)


@bp.post("/payments/import/apply")
@login_required(role=Role.OFFICER)
def payments_apply():
    """Apply the file the dry run showed, all or nothing; it is checked again, since grants may have moved since."""
    content = request.form.get("content", "")
    filename = request.form.get("filename", "")[:200]
    try:
        with get_services().db.session() as session:
            report = apply_payment_results(
                session, current_actor(), content, rules=GrantRules.of(get_services().settings), filename=filename
            )
    except PaymentImportError as exc:
        return _import_page(error=str(exc), status_code=400)
    except PaymentImportRefused as refused:
        return _import_page(
            report=refused.report,
            content=content,
            filename=filename,
            error="Nothing was applied: the file has bad rows (grants may have moved since the check).",
            status_code=409,
        )
    for priority in {notice.priority for notice in report.notices}:
        kick(get_services().redis, priority)
    flash(f"Applied {len(report.rows)} payment results from {filename or 'the file'}.")
    return redirect(url_for("console.beneficiaries.payments_import"))


def _import_page(*, report=None, content: str = "", filename: str = "", error: str | None = None, status_code=200):
    return render_template(
        "beneficiaries/import.html",
        columns=PAYMENT_COLUMNS,
        report=report,
        content=content,
        filename=filename,
        error=error,
    ), status_code
