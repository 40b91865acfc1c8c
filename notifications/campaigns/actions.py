"""What staff do to campaigns, from the console, the JSON API or the CLI: one reading of their input, one set of
limits, one audit entry.

The compose form, the API and the CLI take the same field names, read here, so that they never disagree about what
an audience or a send time means, nor about which command a campaign in a given status accepts. Each action takes
the `Actor` who does it (its role and districts apply) and writes its audit entry in the transaction that makes the
change; sending starts only after that commit (`start_sending`): a job enqueued for a change that was rolled back
would have nothing to send.
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

from models.actors import Actor
from models.campaigns import Audience, Campaign, CampaignStatus
from models.clock import from_lesotho, utcnow
from models.messages import MessagePriority
from models.staff import Role
from notifications.campaigns.fanout import enqueue_fanout
from notifications.campaigns.lifecycle import CampaignError, create_campaign, move_campaign, send_campaign
from notifications.sms.queues import kick

log = logging.getLogger(__name__)

# Field names shared by the compose form, the API's JSON body and the CLI's options.
AUDIENCE_LIST_FIELDS = ("districts", "sexes", "grant_statuses", "languages")
AUDIENCE_AGE_FIELDS = ("age_min", "age_max")
AUDIENCE_DATE_FIELDS = ("registered_from", "registered_to")
# Oldest age an age band may name; beyond it a typo (`350`) is more likely than a person.
MAX_AGE = 120
MAX_NAME_LENGTH = 120
AUDIT_OBJECT = "campaign"
# The least role that may create or steer a campaign.
CAMPAIGN_ROLE = Role.OFFICER


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
    moment = from_lesotho(moment)
    if moment <= (now or utcnow()):
        raise CampaignError("the send time is in the past; leave it empty to send as soon as you confirm")
    return moment


def parse_campaign_input(values: Mapping[str, Any], now: datetime | None = None) -> CampaignInput:
    """Read a campaign from form fields, a JSON object or CLI options, all with these names; `CampaignError` says why.

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


def limit_to_districts(audience: Audience, actor: Actor) -> None:
    """An audience for a district-limited actor: no districts means theirs; others are refused."""
    allowed = actor.district_list
    if not allowed:
        return
    if not audience.districts:
        audience.districts = list(allowed)
        return
    outside = [district for district in audience.districts if district not in allowed]
    if outside:
        raise OutsideDistrictsError(
            f"you may send only to {', '.join(allowed)}; {', '.join(outside)} is outside your districts"
        )


def campaign_within(actor: Actor, campaign: Campaign) -> bool:
    """Whether `campaign` reaches only people in `actor`'s districts (always, for an actor without limits).

    The district rule of every campaign view and action: a district-limited officer or viewer may read a campaign
    that reaches further (list, progress: texts and counters, no person) but neither preview it (its samples show
    people) nor steer it. A campaign for every district reaches outside any limit.
    """
    allowed = actor.district_list
    if not allowed:
        return True
    districts = campaign.audience.districts
    return bool(districts) and all(district in allowed for district in districts)


def require_campaign_within(actor: Actor, campaign: Campaign) -> None:
    """`OutsideDistrictsError` unless `campaign_within(actor, campaign)`."""
    if not campaign_within(actor, campaign):
        reach = ", ".join(campaign.audience.districts) or "every district"
        raise OutsideDistrictsError(
            f"this campaign reaches {reach}; you may act only on campaigns within {', '.join(actor.district_list)}"
        )


def create_campaign_for(
    session: Session, actor: Actor, values: Mapping[str, Any], *, now: datetime | None = None
) -> Campaign:
    """A draft campaign from `actor`'s input (`parse_campaign_input`), with its audit entry. Does not commit.

    `PermissionDeniedError` if the actor may not change campaigns, `CampaignError` saying what is wrong with it.
    """
    actor.require_role(CAMPAIGN_ROLE)
    given = parse_campaign_input(values, now)
    limit_to_districts(given.audience, actor)
    campaign = create_campaign(
        session,
        name=given.name,
        text_en=given.text_en,
        text_st=given.text_st,
        audience=given.audience,
        created_by=actor.name,
        send_at=given.send_at,
    )
    actor.audit(
        session,
        f"{AUDIT_OBJECT}.create",
        AUDIT_OBJECT,
        campaign.id,
        name=campaign.name,
        audience=campaign.audience_json,
        send_at=given.send_at.isoformat() if given.send_at else None,
    )
    return campaign


def steer_campaign(
    session: Session, actor: Actor, campaign: Campaign, action: CampaignAction | str, *, now: datetime | None = None
) -> CampaignStatus:
    """Send, pause, resume or cancel, with its audit entry; `CampaignError` for a move the lifecycle refuses.

    Only a campaign within the actor's districts (`campaign_within`) may be steered, whatever the command: pausing
    or cancelling another district's campaign silences people the actor has no charge of.

    Returns the new status. Does not commit; after the commit, call `start_sending`.
    """
    actor.require_role(CAMPAIGN_ROLE)
    action = CampaignAction(action)
    require_campaign_within(actor, campaign)
    before = campaign.status
    if action in ACTION_SOURCES:
        source, done = ACTION_SOURCES[action]
        if before != source:
            raise CampaignError(f"a {before} campaign cannot be {done}; only a {source} one can")
    if action == CampaignAction.SEND:
        status = send_campaign(session, campaign, now)
    else:
        move_campaign(session, campaign, ACTION_TARGETS[action], now)
        status = CampaignStatus(campaign.status)
    actor.audit(session, f"{AUDIT_OBJECT}.{action}", AUDIT_OBJECT, campaign.id, before=before, after=status)
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
