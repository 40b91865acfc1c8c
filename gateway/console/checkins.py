"""Check-in pages: list, define, send, close, and the answers by district, sex and age band with a CSV download.

The handlers read the form and call `notifications.checkins.definitions`; the rules and the audit entries live
there. The form has one block of fields per question (`q1_kind`, `q1_text_en`, …, options one per line), turned
here into the JSON object the API takes, so both are read by the same parser.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from gateway.auth import current_actor, login_required
from gateway.services import get_services
from models.checkins import MAX_QUESTIONS, CheckinStatus, QuestionKind
from models.clock import lesotho_time
from models.grants import GrantStatus
from models.people import DISTRICTS, Language, Sex
from models.staff import Role
from notifications.campaigns.actions import AUDIENCE_LIST_FIELDS
from notifications.checkins.definitions import (
    AUDIENCE_FIELDS,
    CheckinAction,
    CheckinError,
    CheckinNotFoundError,
    audience_size,
    create_checkin,
    effective_status,
    find_checkin,
    invitation_counts,
    start_invitations,
    steer_checkin,
    visible_checkins,
)
from notifications.checkins.report import answer_counts, answers_csv

CSV_MIMETYPE = "text/csv; charset=utf-8"
TIME_FORMAT = "%Y-%m-%d %H:%M"
QUESTION_FIELDS = ("kind", "text_en", "text_st", "options_en", "options_st", "min", "max")


def local_time(moment: datetime | None) -> str:
    return lesotho_time(moment).strftime(TIME_FORMAT) if moment else "-"


def form_to_definition(form: MultiDict) -> dict:
    """The API's JSON object from the form: question blocks with a kind, options paired line by line."""
    questions = []
    for number in range(1, MAX_QUESTIONS + 1):
        field = {name: form.get(f"q{number}_{name}", "") for name in QUESTION_FIELDS}
        if not field["kind"]:
            continue
        english = [line.strip() for line in field["options_en"].splitlines() if line.strip()]
        sesotho = [line.strip() for line in field["options_st"].splitlines() if line.strip()]
        options = [{"en": en, "st": st} for en, st in zip(english, sesotho, strict=False)]
        if len(english) != len(sesotho):
            options.append({"en": "", "st": ""})  # refused with the question's number by the parser
        questions.append(
            {
                "kind": field["kind"],
                "text_en": field["text_en"],
                "text_st": field["text_st"],
                "options": options,
                "min": field["min"],
                "max": field["max"],
            }
        )
    definition = {name: form.get(name, "") for name in ("title_en", "title_st", "opens_at", "closes_at")}
    definition["remind_after_days"] = form.get("remind_after_days", "")
    definition["questions"] = questions
    for name in AUDIENCE_FIELDS:
        values = form.getlist(name)
        definition[name] = values if name in AUDIENCE_LIST_FIELDS else (values or [""])[0]
    return definition


bp = Blueprint("checkins", __name__)


@bp.get("/checkins")
@login_required
def checkins_list():
    """Check-ins within the staff member's districts, newest first, with invitations counted."""
    with get_services().db.session() as session:
        rows = [
            (checkin, effective_status(checkin), invitation_counts(session, checkin))
            for checkin in visible_checkins(session, current_actor())
        ]
    return render_template("checkins/list.html", rows=rows, local_time=local_time)


def _new_form(form: MultiDict, error: str | None = None, status: int = 200):
    return (
        render_template(
            "checkins/new.html",
            form=form,
            error=error,
            kinds=list(QuestionKind),
            slots=range(1, MAX_QUESTIONS + 1),
            districts=DISTRICTS,
            sexes=list(Sex),
            grant_statuses=list(GrantStatus),
            languages=list(Language),
            reminder_days=get_services().settings.checkin_reminder_days,
        ),
        status,
    )


@bp.route("/checkins/new", methods=["GET", "POST"])
@login_required(role=Role.OFFICER)
def checkin_new():
    """The definition form; a valid check-in is saved as a draft, and nobody is asked until it is sent."""
    if request.method == "GET":
        return _new_form(MultiDict())
    services = get_services()
    try:
        with services.db.session() as session:
            checkin = create_checkin(session, current_actor(), form_to_definition(request.form), services.settings)
            checkin_id = checkin.id
    except CheckinError as exc:
        return _new_form(request.form, error=str(exc), status=400)
    return redirect(url_for("console.checkins.checkin_detail", checkin_id=checkin_id))


def _detail(checkin_id: int, error: str | None = None, status: int = 200):
    actor = current_actor()
    with get_services().db.session() as session:
        try:
            checkin = find_checkin(session, actor, checkin_id)
        except CheckinNotFoundError:
            abort(404, description=f"There is no check-in {checkin_id} within your districts.")
        shown_status = effective_status(checkin)
        return (
            render_template(
                "checkins/detail.html",
                checkin=checkin,
                questions=list(checkin.questions),
                status=shown_status,
                counts=invitation_counts(session, checkin),
                audience=audience_size(session, checkin) if shown_status == CheckinStatus.DRAFT else None,
                answers=answer_counts(session, checkin, actor.district_list),
                can_send=shown_status == CheckinStatus.DRAFT and g.staff.has_role(Role.OFFICER),
                can_close=shown_status != CheckinStatus.CLOSED and g.staff.has_role(Role.OFFICER),
                local_time=local_time,
                error=error,
            ),
            status,
        )


@bp.get("/checkins/<int:checkin_id>")
@login_required
def checkin_detail(checkin_id: int):
    """One check-in: its questions, who was asked and how they answered."""
    return _detail(checkin_id)


@bp.post("/checkins/<int:checkin_id>/send", defaults={"action": CheckinAction.SEND})
@bp.post("/checkins/<int:checkin_id>/close", defaults={"action": CheckinAction.CLOSE})
@login_required(role=Role.OFFICER)
def checkin_action(checkin_id: int, action: str):
    """Send (invite the audience) or close; then back to the check-in."""
    services = get_services()
    try:
        with services.db.session() as session:
            actor = current_actor()
            checkin = find_checkin(session, actor, checkin_id)
            campaign = steer_checkin(session, actor, checkin, action)
    except CheckinNotFoundError:
        abort(404, description=f"There is no check-in {checkin_id} within your districts.")
    except CheckinError as exc:
        return _detail(checkin_id, error=str(exc), status=409)
    if campaign is not None:
        start_invitations(services.redis, checkin, campaign)
    return redirect(url_for("console.checkins.checkin_detail", checkin_id=checkin_id))


@bp.get("/checkins/<int:checkin_id>/answers.csv")
@login_required
def checkin_answers_csv(checkin_id: int):
    """The answers counted, as CSV (counts only: no person is named, so no export audit entry)."""
    actor = current_actor()
    with get_services().db.session() as session:
        try:
            checkin = find_checkin(session, actor, checkin_id)
        except CheckinNotFoundError:
            abort(404, description=f"There is no check-in {checkin_id} within your districts.")
        body = answers_csv(answer_counts(session, checkin, actor.district_list))
    return Response(
        body,
        mimetype=CSV_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="checkin_{checkin_id}_answers.csv"'},
    )
