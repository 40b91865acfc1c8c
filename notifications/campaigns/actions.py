"""What staff do to campaigns from the console and the JSON API: one reading of their input, one set of limits.

The compose form and the API take the same field names, read here, so the two never disagree about what an
audience or a send time means. Every change is written to the audit log in the transaction that makes it, and
sending starts only after that commit (`start_sending`): a job enqueued for a change that was rolled back would
have nothing to send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import redis
from sqlalchemy.orm import Session

from models.audit import record
from models.campaigns import Audience, Campaign, CampaignStatus
from models.clock import LESOTHO, utcnow
from models.messages import MessagePriority
from models.staff import Role, StaffUser
from notifications.campaigns.fanout import enqueue_fanout
from notifications.campaigns.lifecycle import CampaignError, create_campaign, move_campaign, send_campaign
from notifications.sms.queues import kick

log = logging.getLogger(__name__)

# Field names shared by the compose form and the API's JSON body.
AUDIENCE_LIST_FIELDS = ("districts", "sexes", "grant_statuses", "languages")
AUDIENCE_AGE_FIELDS = ("age_min", "age_max")
AUDIENCE_DATE_FIELDS = ("registered_from", "registered_to")
# Oldest age an age band may name; beyond it a typo (`350`) is more likely than a person.
MAX_AGE = 120
MAX_NAME_LENGTH = 120
AUDIT_OBJECT = "campaign"


class CampaignAction(StrEnum):
    """A staff member's command; its audit action is `campaign.<value>`."""

    SEND = "send"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


# Where each command (but `send`, which may schedule) moves a campaign.
ACTION_TARGETS = {
    CampaignAction.PAUSE: CampaignStatus.PAUSED,
    CampaignAction.RESUME: CampaignStatus.SENDING,
    CampaignAction.CANCEL: CampaignStatus.CANCELLED,
}
# Commands that only make sense from one status, although the lifecycle would allow the move from others: a draft
# "resumed" would skip its schedule, a paused campaign "sent" again would hide that it had been paused.
ACTION_SOURCES = {
    CampaignAction.SEND: (CampaignStatus.DRAFT, "sent"),
    CampaignAction.RESUME: (CampaignStatus.PAUSED, "resumed"),
}
# Commands that make messages leave, and so must stay within the staff member's districts. Pausing and
# cancelling only ever hold messages back, so anyone who may change campaigns may do them.
SENDING_ACTIONS = frozenset({CampaignAction.SEND, CampaignAction.RESUME})


class OutsideDistrictsError(CampaignError):
    """The campaign would reach people outside the districts the staff member is limited to."""


@dataclass
class CampaignInput:
    name: str
    text_en: str
    text_st: str
    audience: Audience
    send_at: datetime | None


def _scalar(value: Any) -> str:
    """A form gives every field as a list of strings, JSON as a value: one trimmed string either way."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return "" if value is None else str(value).strip()


def _items(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [str(item).strip() for item in values if str(item).strip()]


def _age(name: str, text: str) -> int | None:
    if not text:
        return None
    try:
        age = int(text)
    except ValueError:
        raise CampaignError(f"{name.replace('_', ' ')} must be a whole number of years, not {text!r}") from None
    if not 0 <= age <= MAX_AGE:
        raise CampaignError(f"{name.replace('_', ' ')} must be between 0 and {MAX_AGE}")
    return age


def _date(name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CampaignError(f"{name.replace('_', ' ')} must be a date such as 2026-12-01, not {text!r}") from None


def parse_send_at(text: str, now: datetime | None = None) -> datetime | None:
    """An ISO time, in Lesotho time unless it carries an offset (what an officer means by "09:00"); empty: now.

    A time already past is refused: the officer meant some other day, and sending at once would surprise them.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CampaignError(f"the send time must be a date and time such as 2026-12-01T09:00, not {text!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=LESOTHO)
    if moment <= (now or utcnow()):
        raise CampaignError("the send time is in the past; leave it empty to send as soon as you confirm")
    return moment


def parse_campaign_input(values: Mapping[str, Any], now: datetime | None = None) -> CampaignInput:
    """Read a campaign from form fields or a JSON object with the same names; `CampaignError` says what is wrong.

    Only the shape is checked here; `create_campaign` checks the content (known districts, placeholders, …).
    """
    name = _scalar(values.get("name"))
    if len(name) > MAX_NAME_LENGTH:
        raise CampaignError(f"the name is longer than {MAX_NAME_LENGTH} characters")
    audience = Audience(
        **{field: _items(values.get(field)) for field in AUDIENCE_LIST_FIELDS},
        **{field: _age(field, _scalar(values.get(field))) for field in AUDIENCE_AGE_FIELDS},
        **{field: _date(field, _scalar(values.get(field))) for field in AUDIENCE_DATE_FIELDS},
    )
    return CampaignInput(
        name=name,
        # Texts keep their inner spacing as written; only the ends are trimmed.
        text_en=_scalar(values.get("text_en")),
        text_st=_scalar(values.get("text_st")),
        audience=audience,
        send_at=parse_send_at(_scalar(values.get("send_at")), now),
    )


def limit_to_districts(audience: Audience, staff: StaffUser) -> None:
    """An audience for a district-limited officer: no districts means theirs; others are refused."""
    allowed = staff.district_list
    if staff.role == Role.ADMIN or not allowed:
        return
    if not audience.districts:
        audience.districts = list(allowed)
        return
    outside = [district for district in audience.districts if district not in allowed]
    if outside:
        raise OutsideDistrictsError(
            f"you may send only to {', '.join(allowed)}; {', '.join(outside)} is outside your districts"
        )


def create_for_staff(
    session: Session, values: Mapping[str, Any], staff: StaffUser, *, ip: str | None = None, now: datetime | None = None
) -> Campaign:
    """A draft campaign from a staff member's input, with its audit entry. Does not commit."""
    given = parse_campaign_input(values, now)
    limit_to_districts(given.audience, staff)
    campaign = create_campaign(
        session,
        name=given.name,
        text_en=given.text_en,
        text_st=given.text_st,
        audience=given.audience,
        created_by=staff.email,
        send_at=given.send_at,
    )
    record(
        session,
        staff.email,
        f"{AUDIT_OBJECT}.create",
        AUDIT_OBJECT,
        campaign.id,
        ip=ip,
        name=campaign.name,
        audience=campaign.audience_json,
        send_at=given.send_at.isoformat() if given.send_at else None,
    )
    return campaign


def steer_campaign(
    session: Session,
    campaign: Campaign,
    action: CampaignAction,
    staff: StaffUser,
    *,
    ip: str | None = None,
    now: datetime | None = None,
) -> CampaignStatus:
    """Send, pause, resume or cancel, with its audit entry; `CampaignError` for a move the lifecycle refuses.

    Returns the new status. Does not commit; after the commit, call `start_sending`.
    """
    action = CampaignAction(action)
    before = campaign.status
    if action in ACTION_SOURCES:
        source, done = ACTION_SOURCES[action]
        if before != source:
            raise CampaignError(f"a {before} campaign cannot be {done}; only a {source} one can")
    if action in SENDING_ACTIONS:
        audience = campaign.audience
        requested = list(audience.districts)
        limit_to_districts(audience, staff)
        if not requested and audience.districts:
            # A campaign for every district, written by someone without limits.
            raise OutsideDistrictsError("this campaign reaches every district; you may send only to your districts")
    if action == CampaignAction.SEND:
        status = send_campaign(session, campaign, now)
    else:
        move_campaign(session, campaign, ACTION_TARGETS[action], now)
        status = CampaignStatus(campaign.status)
    record(
        session, staff.email, f"{AUDIT_OBJECT}.{action}", AUDIT_OBJECT, campaign.id, ip=ip, before=before, after=status
    )
    return status


def start_sending(connection: redis.Redis, campaign_id: int, status: CampaignStatus | str) -> None:
    """After the commit: start the fan-out and the bulk drain of a campaign that is now sending.

    If Redis is down nothing is lost: the worker's sweep restarts every sending campaign's unfinished fan-out.
    """
    if status != CampaignStatus.SENDING:
        return
    try:
        enqueue_fanout(connection, campaign_id)
    except redis.RedisError:
        log.warning("could not enqueue the fan-out of campaign %s; the sweep will", campaign_id, exc_info=True)
        return
    kick(connection, MessagePriority.BULK)
