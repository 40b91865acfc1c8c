"""Campaigns over the JSON API: create, preview, send, pause, resume, cancel, and read status and counters.

The JSON body of `POST /campaigns` has the compose form's field names (`notifications.campaigns.actions` reads
both), and every change writes the same audit entries as the console.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy import select

from gateway.auth import current_actor, json_error, token_required
from gateway.security import MAX_PAGE
from gateway.services import get_services
from models.campaigns import Campaign
from models.clock import as_utc
from models.staff import Role
from notifications.campaigns.actions import (
    CampaignAction,
    OutsideDistrictsError,
    campaign_within,
    create_campaign_for,
    start_sending,
    steer_campaign,
)
from notifications.campaigns.lifecycle import CampaignError, CampaignProgress, campaign_progress, preview_campaign

# Campaigns per page of `GET /campaigns`, unless `limit` asks for fewer (or more, up to the ceiling).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

_ID = {"name": "campaign_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AUDIENCE_LIST = {"type": "array", "items": {"type": "string"}}
CAMPAIGN_INPUT_SCHEMA = {
    "type": "object",
    "required": ["name", "text_en", "text_st"],
    "properties": {
        "name": {"type": "string", "maxLength": 120},
        "text_en": {"type": "string", "description": "Placeholders: {first_name}, {reference}, {district}"},
        "text_st": {"type": "string", "description": "Same placeholders as text_en"},
        "districts": _AUDIENCE_LIST,
        "sexes": _AUDIENCE_LIST,
        "grant_statuses": _AUDIENCE_LIST,
        "languages": _AUDIENCE_LIST,
        "age_min": {"type": "integer"},
        "age_max": {"type": "integer"},
        "registered_from": {"type": "string", "format": "date"},
        "registered_to": {"type": "string", "format": "date", "description": "Inclusive"},
        "send_at": {"type": "string", "description": "ISO time; Lesotho time without an offset; absent: on send"},
    },
}


def _steer_doc(summary: str) -> dict:
    return {
        "post": {
            "summary": summary,
            "parameters": [_ID],
            "responses": {
                "200": {"description": "The campaign with its new status and counters"},
                "403": {"description": "The campaign reaches outside the token's districts", **_ERROR},
                "404": {"description": "No such campaign", **_ERROR},
                "409": {"description": "The campaign's lifecycle refuses this move; `error` says why", **_ERROR},
            },
        }
    }


OPENAPI_PATHS = {
    "/campaigns": {
        "get": {
            "summary": "Campaigns, newest first, with their counters",
            "parameters": [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": MAX_PAGE_SIZE}},
            ],
            "responses": {"200": {"description": "`campaigns`, `page` and `more`"}},
        },
        "post": {
            "summary": "Create a draft campaign (officer); nothing is sent until POST /campaigns/{id}/send",
            "requestBody": {"required": True, "content": {"application/json": {"schema": CAMPAIGN_INPUT_SCHEMA}}},
            "responses": {
                "201": {"description": "The draft campaign"},
                "400": {"description": "The campaign is refused; `error` says why", **_ERROR},
            },
        },
    },
    "/campaigns/{campaign_id}": {
        "get": {
            "summary": "One campaign: status, texts, audience and counters",
            "parameters": [_ID],
            "responses": {
                "200": {"description": "The campaign"},
                "404": {"description": "No such campaign", **_ERROR},
            },
        }
    },
    "/campaigns/{campaign_id}/preview": {
        "get": {
            "summary": "What sending would do: recipients per language, SMS parts, estimated cost, samples",
            "parameters": [_ID],
            "responses": {
                "200": {"description": "recipients, total, excluded_opted_out, parts, cost, samples, non_gsm"},
                "404": {"description": "No such campaign within the token's districts", **_ERROR},
            },
        }
    },
    "/campaigns/{campaign_id}/send": _steer_doc("Send now, or schedule for the campaign's send_at (officer)"),
    "/campaigns/{campaign_id}/pause": _steer_doc("Hold the messages not sent yet (officer)"),
    "/campaigns/{campaign_id}/resume": _steer_doc("Send a paused campaign's remaining messages (officer)"),
    "/campaigns/{campaign_id}/cancel": _steer_doc("Withdraw every message not sent yet (officer)"),
}


def _time(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, however the value was made (a send time is typed in Lesotho time)."""
    return as_utc(moment).astimezone(UTC).isoformat() if moment else None


def campaign_json(campaign: Campaign, progress: CampaignProgress) -> dict:
    audience = asdict(campaign.audience)
    for key in ("registered_from", "registered_to"):
        audience[key] = audience[key].isoformat() if audience[key] else None
    return {
        "id": campaign.id,
        "name": campaign.name,
        "kind": campaign.kind,
        "status": campaign.status,
        "text_en": campaign.text_en,
        "text_st": campaign.text_st,
        "audience": audience,
        "send_at": _time(campaign.send_at),
        "created_by": campaign.created_by,
        "created_at": _time(campaign.created_at),
        "started_at": _time(campaign.started_at),
        "completed_at": _time(campaign.completed_at),
        "progress": {**asdict(progress), "done": progress.done},
    }


def _load(session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def _missing(campaign_id: int) -> Response:
    return json_error(404, f"no campaign {campaign_id}")


bp = Blueprint("campaigns", __name__)


@bp.get("/campaigns")
@token_required
def api_campaigns_list() -> Response:
    """Campaigns newest first, a page at a time."""
    page = request.args.get("page", 1, type=int)
    limit = request.args.get("limit", DEFAULT_PAGE_SIZE, type=int)
    if not 1 <= page <= MAX_PAGE or not 1 <= limit <= MAX_PAGE_SIZE:
        return json_error(400, f"page must be 1 to {MAX_PAGE} and limit between 1 and {MAX_PAGE_SIZE}")
    with get_services().db.session() as session:
        # One more than asked, to know whether another page follows.
        campaigns = (
            session.execute(select(Campaign).order_by(Campaign.id.desc()).limit(limit + 1).offset((page - 1) * limit))
            .scalars()
            .all()
        )
        shown = [campaign_json(campaign, campaign_progress(session, campaign)) for campaign in campaigns[:limit]]
    return {"campaigns": shown, "page": page, "more": len(campaigns) > limit}


@bp.post("/campaigns")
@token_required(role=Role.OFFICER)
def api_campaign_create() -> Response:
    """A draft campaign from the JSON body; 400 with the reason when it is refused."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "send a JSON object with name, text_en, text_st and the audience fields")
    try:
        with get_services().db.session() as session:
            campaign = create_campaign_for(session, current_actor(), body)
            shown = campaign_json(campaign, campaign_progress(session, campaign))
    except OutsideDistrictsError as exc:
        return json_error(403, str(exc))
    except CampaignError as exc:
        return json_error(400, str(exc))
    return shown, 201


@bp.get("/campaigns/<int:campaign_id>")
@token_required
def api_campaign(campaign_id: int) -> Response:
    """Status, texts, audience and live counters of one campaign."""
    with get_services().db.session() as session:
        campaign = _load(session, campaign_id)
        if campaign is None:
            return _missing(campaign_id)
        return campaign_json(campaign, campaign_progress(session, campaign))


@bp.get("/campaigns/<int:campaign_id>/preview")
@token_required
def api_campaign_preview(campaign_id: int) -> Response:
    """What sending would do, before it is done."""
    services = get_services()
    with services.db.session() as session:
        campaign = _load(session, campaign_id)
        if campaign is None or not campaign_within(current_actor(), campaign):
            return _missing(campaign_id)  # its samples show people: outside the token's districts it is not there
        preview = preview_campaign(session, campaign, services.settings)
    return {
        "campaign_id": campaign_id,
        "recipients": preview.recipients,
        "total": preview.total,
        "excluded_opted_out": preview.excluded_opted_out,
        "parts": preview.parts,
        "cost": preview.cost,
        "price_per_part": services.settings.sms_price_per_part,
        "samples": [{"language": lang, "phone": phone, "text": text} for lang, phone, text in preview.samples],
        "non_gsm": preview.non_gsm,
    }


@bp.post("/campaigns/<int:campaign_id>/send", defaults={"action": CampaignAction.SEND.value})
@bp.post("/campaigns/<int:campaign_id>/pause", defaults={"action": CampaignAction.PAUSE.value})
@bp.post("/campaigns/<int:campaign_id>/resume", defaults={"action": CampaignAction.RESUME.value})
@bp.post("/campaigns/<int:campaign_id>/cancel", defaults={"action": CampaignAction.CANCEL.value})
@token_required(role=Role.OFFICER)
def api_campaign_steer(campaign_id: int, action: str) -> Response:
    """Send, pause, resume or cancel; 409 with the reason for a move the lifecycle refuses."""
    services = get_services()
    try:
        with services.db.session() as session:
            campaign = _load(session, campaign_id)
            if campaign is None:
                return _missing(campaign_id)
            status = steer_campaign(session, current_actor(), campaign, action)
            shown = campaign_json(campaign, campaign_progress(session, campaign))
    except OutsideDistrictsError as exc:
        return json_error(403, str(exc))
    except CampaignError as exc:
        return json_error(409, str(exc))
    start_sending(services.redis, campaign_id, status)
    return shown
