"""Campaign pages: list, compose, preview and confirm, live progress, pause / resume / cancel.

The handlers read the form and call `notifications.campaigns.actions`; the rules and the audit entries live there.
The progress page refreshes itself with a `<meta http-equiv="refresh">`: no script, and on a slow connection
each refresh is one small page.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from gateway.auth import current_actor, login_required
from gateway.security import MAX_PAGE
from gateway.services import get_services
from models.campaigns import Campaign, CampaignKind, CampaignStatus
from models.clock import lesotho_time
from models.grants import GrantStatus
from models.people import DISTRICTS, Language, Sex
from models.staff import Role
from notifications.campaigns.actions import (
    CampaignAction,
    OutsideDistrictsError,
    campaign_within,
    create_campaign_for,
    start_sending,
    steer_campaign,
)
from notifications.campaigns.lifecycle import PLACEHOLDERS, CampaignError, campaign_progress, preview_campaign

CAMPAIGNS_PER_PAGE = 50
# Seconds between two refreshes of the progress page while messages are going out, and while a campaign waits
# (scheduled or paused): often enough to watch, rare enough for a slow connection.
REFRESH_SENDING_SECONDS = 3
REFRESH_WAITING_SECONDS = 30
REFRESH_SECONDS = {
    CampaignStatus.SENDING: REFRESH_SENDING_SECONDS,
    CampaignStatus.SCHEDULED: REFRESH_WAITING_SECONDS,
    CampaignStatus.PAUSED: REFRESH_WAITING_SECONDS,
}
LANGUAGE_NAMES = {Language.ENGLISH: "English", Language.SESOTHO: "Sesotho"}
# Which buttons a campaign in each status offers; the lifecycle in models.campaigns has the last word.
ACTIONS_BY_STATUS = {
    CampaignStatus.DRAFT: (CampaignAction.CANCEL,),
    CampaignStatus.SCHEDULED: (CampaignAction.CANCEL,),
    CampaignStatus.SENDING: (CampaignAction.PAUSE, CampaignAction.CANCEL),
    CampaignStatus.PAUSED: (CampaignAction.RESUME, CampaignAction.CANCEL),
}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def local_time(moment: datetime | None) -> str:
    """A stored UTC time as staff read it: Lesotho time."""
    return lesotho_time(moment).strftime(TIME_FORMAT) if moment else "-"


def _campaign(session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, description=f"There is no campaign {campaign_id}.")
    return campaign


def _render(template: str, status: int = 200, **context):
    return (
        render_template(
            template,
            local_time=local_time,
            language_names=LANGUAGE_NAMES,
            **context,
        ),
        status,
    )


bp = Blueprint("campaigns", __name__)


@bp.get("/campaigns")
@login_required
def campaigns_list():
    """Every campaign, newest first, with its counters."""
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    with get_services().db.session() as session:
        total = session.execute(select(func.count()).select_from(Campaign)).scalar_one()
        campaigns = session.execute(
            select(Campaign)
            .order_by(Campaign.id.desc())
            .limit(CAMPAIGNS_PER_PAGE)
            .offset((page - 1) * CAMPAIGNS_PER_PAGE)
        ).scalars()
        rows = [(campaign, campaign_progress(session, campaign)) for campaign in campaigns]
    return _render(
        "campaigns/list.html",
        rows=rows,
        page=page,
        more=page * CAMPAIGNS_PER_PAGE < total,
        covid=CampaignKind.COVID_SERIES,
    )


def _compose(form: MultiDict, error: str | None = None, status: int = 200):
    return _render(
        "campaigns/compose.html",
        status,
        form=form,
        error=error,
        districts=DISTRICTS,
        sexes=list(Sex),
        grant_statuses=list(GrantStatus),
        languages=list(Language),
        placeholders=PLACEHOLDERS,
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required(role=Role.OFFICER)
def campaign_compose():
    """The compose form; a valid campaign is saved as a draft and shown in preview, nothing is sent yet."""
    if request.method == "GET":
        return _compose(MultiDict())
    try:
        with get_services().db.session() as session:
            campaign = create_campaign_for(session, current_actor(), request.form.to_dict(flat=False))
            campaign_id = campaign.id
    except CampaignError as exc:
        return _compose(request.form, error=str(exc), status=403 if isinstance(exc, OutsideDistrictsError) else 400)
    return redirect(url_for("console.campaigns.campaign_preview", campaign_id=campaign_id))


@bp.get("/campaigns/<int:campaign_id>/preview")
@login_required
def campaign_preview(campaign_id: int):
    """What sending would do (recipients, parts, cost, samples, alphabet warnings), and the confirm button."""
    services = get_services()
    with services.db.session() as session:
        campaign = _campaign(session, campaign_id)
        if not campaign_within(current_actor(), campaign):
            # Its samples show people outside the staff member's districts.
            abort(404, description=f"There is no campaign {campaign_id} within your districts.")
        preview = preview_campaign(session, campaign, services.settings)
    return _render(
        "campaigns/preview.html",
        campaign=campaign,
        audience=campaign.audience,
        preview=preview,
        price=services.settings.sms_price_per_part,
        can_send=campaign.status == CampaignStatus.DRAFT and g.staff.has_role(Role.OFFICER),
    )


def _progress_page(campaign_id: int, error: str | None = None, status: int = 200):
    with get_services().db.session() as session:
        campaign = _campaign(session, campaign_id)
        progress = campaign_progress(session, campaign)
    return _render(
        "campaigns/progress.html",
        status,
        campaign=campaign,
        audience=campaign.audience,
        progress=progress,
        refresh=REFRESH_SECONDS.get(CampaignStatus(campaign.status)),
        actions=ACTIONS_BY_STATUS.get(CampaignStatus(campaign.status), ())
        if g.staff.has_role(Role.OFFICER) and campaign_within(current_actor(), campaign)
        else (),
        error=error,
    )


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign_progress_page(campaign_id: int):
    """Live counters of one campaign; the page reloads itself while messages are going out."""
    return _progress_page(campaign_id)


@bp.post("/campaigns/<int:campaign_id>/send", defaults={"action": CampaignAction.SEND.value})
@bp.post("/campaigns/<int:campaign_id>/pause", defaults={"action": CampaignAction.PAUSE.value})
@bp.post("/campaigns/<int:campaign_id>/resume", defaults={"action": CampaignAction.RESUME.value})
@bp.post("/campaigns/<int:campaign_id>/cancel", defaults={"action": CampaignAction.CANCEL.value})
@login_required(role=Role.OFFICER)
def campaign_steer(campaign_id: int, action: str):
    """Send (after the preview), pause, resume or cancel; then back to the progress page."""
    services = get_services()
    try:
        with services.db.session() as session:
            status = steer_campaign(session, current_actor(), _campaign(session, campaign_id), action)
    except CampaignError as exc:
        return _progress_page(
            campaign_id, error=str(exc), status=403 if isinstance(exc, OutsideDistrictsError) else 409
        )
    start_sending(services.redis, campaign_id, status)
    return redirect(url_for("console.campaigns.campaign_progress_page", campaign_id=campaign_id))
