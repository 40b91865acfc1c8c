"""Follow-up check-ins over the JSON API: define, send, close, and read them with their answers counted.

The JSON body of `POST /checkins` is what `notifications.checkins.definitions.parse_checkin_input` reads (the
console builds the same object from its form); every change writes the same audit entries as the console.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from gateway.auth import current_actor, json_error, token_required
from gateway.services import get_services
from models.checkins import Checkin
from models.clock import as_utc
from models.staff import Role
from notifications.checkins.definitions import (
    CheckinAction,
    CheckinError,
    CheckinNotFoundError,
    create_checkin,
    effective_status,
    find_checkin,
    invitation_counts,
    start_invitations,
    steer_checkin,
    visible_checkins,
)
from notifications.checkins.report import answer_counts

_ID = {"name": "checkin_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_TEXT = {"type": "string"}
CHECKIN_INPUT_SCHEMA = {
    "type": "object",
    "required": ["title_en", "title_st", "questions"],
    "properties": {
        "title_en": {"type": "string", "maxLength": 60},
        "title_st": {"type": "string", "maxLength": 60},
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 8,
            "items": {
                "type": "object",
                "required": ["kind", "text_en", "text_st"],
                "properties": {
                    "kind": {"type": "string", "enum": ["choice", "number", "yes_no"]},
                    "text_en": {"type": "string", "maxLength": 100},
                    "text_st": {"type": "string", "maxLength": 100},
                    "options": {
                        "type": "array",
                        "description": "choice: 2 to 6 options, each in both languages",
                        "items": {"type": "object", "properties": {"en": _TEXT, "st": _TEXT}},
                    },
                    "min": {"type": "integer", "description": "number: lowest answer, 1 or more"},
                    "max": {"type": "integer", "description": "number: highest answer, 97 at most"},
                },
            },
        },
        "districts": {"type": "array", "items": _TEXT},
        "sexes": {"type": "array", "items": _TEXT},
        "grant_statuses": {"type": "array", "items": _TEXT},
        "languages": {"type": "array", "items": _TEXT},
        "age_min": {"type": "integer"},
        "age_max": {"type": "integer"},
        "registered_from": {"type": "string", "format": "date"},
        "registered_to": {"type": "string", "format": "date"},
        "opens_at": {"type": "string", "description": "Date or time, Lesotho time; absent: when sent"},
        "closes_at": {"type": "string", "description": "Date (inclusive) or time, Lesotho time; absent: 14 days"},
        "remind_after_days": {"type": "integer", "description": "0: no reminder; absent: CHECKIN_REMINDER_DAYS"},
    },
}


def _action_doc(summary: str) -> dict:
    return {
        "post": {
            "summary": summary,
            "parameters": [_ID],
            "responses": {
                "200": {"description": "The check-in with its new status"},
                "404": {"description": "No such check-in within the token's districts", **_ERROR},
                "409": {"description": "Refused in the check-in's status; `error` says why", **_ERROR},
            },
        }
    }


OPENAPI_PATHS = {
    "/checkins": {
        "get": {
            "summary": "Check-ins, newest first, with their questions and invitations counted by status",
            "responses": {"200": {"description": "`checkins`"}},
        },
        "post": {
            "summary": "Define a draft check-in (officer); nobody is asked until POST /checkins/{id}/send",
            "requestBody": {"required": True, "content": {"application/json": {"schema": CHECKIN_INPUT_SCHEMA}}},
            "responses": {
                "201": {"description": "The draft check-in"},
                "400": {"description": "The check-in is refused; `error` says why", **_ERROR},
            },
        },
    },
    "/checkins/{checkin_id}": {
        "get": {
            "summary": "One check-in",
            "parameters": [_ID],
            "responses": {"200": {"description": "The check-in"}, "404": {"description": "No such check-in", **_ERROR}},
        }
    },
    "/checkins/{checkin_id}/send": _action_doc("Invite the audience and send the invitation SMS (officer)"),
    "/checkins/{checkin_id}/close": _action_doc("Stop taking answers; unsent invitations are withdrawn (officer)"),
    "/checkins/{checkin_id}/answers": {
        "get": {
            "summary": "People per question, answer, district, sex and age band (within the token's districts)",
            "parameters": [_ID],
            "responses": {
                "200": {"description": "`answers`: question, question_text, answer, district, sex, age_band, people"},
                "404": {"description": "No such check-in", **_ERROR},
            },
        }
    },
}


def _time(moment: datetime | None) -> str | None:
    return as_utc(moment).astimezone(UTC).isoformat() if moment else None


def checkin_json(session: Session, checkin: Checkin) -> dict:
    """A check-in as the API shows it (also the console's JSON-free summary)."""
    return {
        "id": checkin.id,
        "title_en": checkin.title_en,
        "title_st": checkin.title_st,
        "status": effective_status(checkin),
        "audience": json.loads(checkin.audience_json),
        "opens_at": _time(checkin.opens_at),
        "closes_at": _time(checkin.closes_at),
        "remind_after_days": checkin.remind_after_days,
        "created_by": checkin.created_by,
        "sent_at": _time(checkin.sent_at),
        "closed_at": _time(checkin.closed_at),
        "invitation_campaign_id": checkin.campaign_id,
        "reminder_campaign_id": checkin.reminder_campaign_id,
        "questions": [
            {
                "position": question.position,
                "kind": question.kind,
                "text_en": question.text_en,
                "text_st": question.text_st,
                "options": [{"en": english, "st": sesotho} for english, sesotho in question.options],
                "min": question.min_value,
                "max": question.max_value,
            }
            for question in checkin.questions
        ],
        "invitations": invitation_counts(session, checkin),
    }


bp = Blueprint("checkins", __name__)


@bp.get("/checkins")
@token_required
def api_checkins_list() -> Response:
    """Check-ins within the token's districts, newest first."""
    with get_services().db.session() as session:
        return {"checkins": [checkin_json(session, c) for c in visible_checkins(session, current_actor())]}


@bp.post("/checkins")
@token_required(role=Role.OFFICER)
def api_checkin_create() -> Response:
    """A draft check-in from the JSON body; 400 with the reason when it is refused."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "send a JSON object with title_en, title_st, questions and the audience fields")
    services = get_services()
    try:
        with services.db.session() as session:
            checkin = create_checkin(session, current_actor(), body, services.settings)
            shown = checkin_json(session, checkin)
    except CheckinError as exc:
        return json_error(400, str(exc))
    return shown, 201


@bp.get("/checkins/<int:checkin_id>")
@token_required
def api_checkin(checkin_id: int) -> Response:
    try:
        with get_services().db.session() as session:
            return checkin_json(session, find_checkin(session, current_actor(), checkin_id))
    except CheckinNotFoundError as exc:
        return json_error(404, str(exc))


@bp.post("/checkins/<int:checkin_id>/send", defaults={"action": CheckinAction.SEND})
@bp.post("/checkins/<int:checkin_id>/close", defaults={"action": CheckinAction.CLOSE})
@token_required(role=Role.OFFICER)
def api_checkin_action(checkin_id: int, action: str) -> Response:
    """Send or close; 409 with the reason when the check-in's status refuses it."""
    services = get_services()
    try:
        with services.db.session() as session:
            actor = current_actor()
            checkin = find_checkin(session, actor, checkin_id)
            campaign = steer_checkin(session, actor, checkin, action)
            shown = checkin_json(session, checkin)
    except CheckinNotFoundError as exc:
        return json_error(404, str(exc))
    except CheckinError as exc:
        return json_error(409, str(exc))
    if campaign is not None:
        start_invitations(services.redis, checkin, campaign)
    return shown


@bp.get("/checkins/<int:checkin_id>/answers")
@token_required
def api_checkin_answers(checkin_id: int) -> Response:
    """The answers counted; a district-limited token counts only its districts' people."""
    actor = current_actor()
    try:
        with get_services().db.session() as session:
            checkin = find_checkin(session, actor, checkin_id)
            counts = answer_counts(session, checkin, actor.district_list)
            return {"checkin_id": checkin_id, "answers": [count.as_dict() for count in counts]}
    except CheckinNotFoundError as exc:
        return json_error(404, str(exc))
