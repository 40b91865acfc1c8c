"""What staff do to check-ins, from the console, the JSON API or the CLI: define, send, close.

Each action takes the `Actor` who does it (officer or admin; a district-limited officer reaches only their
districts, as with campaigns) and writes its audit entry in the transaction of the change. Sending reuses the
campaigns wholesale: the people are chosen by the campaign audience (`notifications.campaigns.lifecycle.
audience_select`), and the invitation SMS is a bulk campaign of its own, so quiet hours, STOP, the send rate, the
progress page and pausing all apply as they do to any campaign. After the commit, call `start_sending`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from config import Settings
from models.actors import Actor
from models.campaigns import Audience, Campaign, CampaignKind, CampaignStatus
from models.checkins import (
    MAX_OPTION_CHARS,
    MAX_OPTIONS,
    MAX_QUESTION_CHARS,
    MAX_QUESTIONS,
    MAX_REMINDER_DAYS,
    MAX_TITLE_CHARS,
    MIN_OPTIONS,
    NUMBER_HIGHEST,
    NUMBER_LOWEST,
    Checkin,
    CheckinInvitation,
    CheckinQuestion,
    CheckinStatus,
    InvitationStatus,
    QuestionKind,
)
from models.clock import as_utc, end_of_lesotho_day, from_lesotho, lesotho_time, start_of_lesotho_day, utcnow
from models.people import Beneficiary, Contact, Language
from models.staff import Role
from models.ussd import CHECKINS_OPEN_UNTIL_KEY
from notifications.campaigns.actions import (
    AUDIENCE_AGE_FIELDS,
    AUDIENCE_DATE_FIELDS,
    AUDIENCE_LIST_FIELDS,
    limit_to_districts,
    parse_campaign_input,
    start_sending,
)
from notifications.campaigns.lifecycle import (
    CampaignError,
    audience_select,
    check_audience,
    create_campaign,
    move_campaign,
    send_campaign,
)
from notifications.casework.privacy import ERASED_PHONE_PREFIX
from notifications.sms.encoding import non_gsm_characters
from notifications.sms.texts import sms_catalogue

log = logging.getLogger(__name__)

AUDIT_OBJECT = "checkin"
# The least role that may define, send or close a check-in.
CHECKIN_ROLE = Role.OFFICER
AUDIENCE_FIELDS = (*AUDIENCE_LIST_FIELDS, *AUDIENCE_AGE_FIELDS, *AUDIENCE_DATE_FIELDS)
# People whose data was erased keep their figures but are never asked anything again.
NOT_ERASED = ~Contact.phone.startswith(ERASED_PHONE_PREFIX)
# How long a check-in stays open when staff give no closing date.
DEFAULT_OPEN_DAYS = 14
# Campaign statuses in which an invitation or reminder may still be withdrawn when the check-in closes.
_STOPPABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)


class CheckinError(ValueError):
    """A check-in request that cannot be done; the message says why, for staff."""


class CheckinNotFoundError(CheckinError):
    """No such check-in within the actor's districts."""


@dataclass(frozen=True)
class QuestionInput:
    kind: QuestionKind
    text_en: str
    text_st: str
    options: tuple[tuple[str, str], ...] = ()
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class CheckinInput:
    title_en: str
    title_st: str
    questions: tuple[QuestionInput, ...]
    audience: Audience
    opens_at: datetime
    closes_at: datetime
    remind_after_days: int


# -- reading what staff typed ----------------------------------------------------------------------------------


def _screen_text(what: str, text: str, longest: int) -> str:
    """A text a feature phone shows: present, short enough, GSM 03.38 only, and no braces (they are placeholders)."""
    text = " ".join(text.split())
    if not text:
        raise CheckinError(f"{what} is empty")
    if len(text) > longest:
        raise CheckinError(f"{what} is longer than {longest} characters")
    outside = non_gsm_characters(text)
    if outside:
        raise CheckinError(f"{what} has characters a feature phone cannot show: {' '.join(outside)}")
    if "{" in text or "}" in text:
        raise CheckinError(f"{what} may not contain braces")
    return text


def _scalar(value: Any) -> str:
    """A form gives every field as a list of strings, JSON as a value: one trimmed string either way."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return "" if value is None else str(value).strip()


def _whole(what: str, value: Any) -> int | None:
    text = _scalar(value)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise CheckinError(f"{what} must be a whole number, not {text!r}") from None


def _question(number: int, values: Mapping[str, Any]) -> QuestionInput:
    what = f"question {number}"
    try:
        kind = QuestionKind(_scalar(values.get("kind")))
    except ValueError:
        raise CheckinError(f"{what}: the kind is one of {', '.join(QuestionKind)}") from None
    text_en = _screen_text(f"{what} (English)", _scalar(values.get("text_en")), MAX_QUESTION_CHARS)
    text_st = _screen_text(f"{what} (Sesotho)", _scalar(values.get("text_st")), MAX_QUESTION_CHARS)
    if kind == QuestionKind.CHOICE:
        options = []
        given = values.get("options")
        for index, option in enumerate(given if isinstance(given, list) else [], start=1):
            option = option if isinstance(option, Mapping) else {}
            options.append(
                (
                    _screen_text(f"{what}, option {index} (English)", _scalar(option.get("en")), MAX_OPTION_CHARS),
                    _screen_text(f"{what}, option {index} (Sesotho)", _scalar(option.get("st")), MAX_OPTION_CHARS),
                )
            )
        if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise CheckinError(f"{what}: a choice has {MIN_OPTIONS} to {MAX_OPTIONS} options, each in both languages")
        return QuestionInput(kind, text_en, text_st, options=tuple(options))
    if kind == QuestionKind.NUMBER:
        low, high = (
            _whole(f"{what}: the lowest number", values.get("min")),
            _whole(f"{what}: the highest number", values.get("max")),
        )
        if low is None or high is None or not NUMBER_LOWEST <= low < high <= NUMBER_HIGHEST:
            raise CheckinError(
                f"{what}: a number question needs a range within {NUMBER_LOWEST} to {NUMBER_HIGHEST} (0, 98 and 99 "
                "are the keypad's Back, More and Skip); ask for 'none' as a choice"
            )
        return QuestionInput(kind, text_en, text_st, low=low, high=high)
    return QuestionInput(kind, text_en, text_st)


def _moment(what: str, text: str, *, end_of_day: bool) -> datetime | None:
    """A date (the whole Lesotho day: its start, or its end for a closing date) or a time, Lesotho time."""
    if not text:
        return None
    try:
        if len(text) == len("2026-12-01"):
            day = date.fromisoformat(text)
            return end_of_lesotho_day(day) if end_of_day else start_of_lesotho_day(day)
        return as_utc(from_lesotho(datetime.fromisoformat(text)))
    except (ValueError, OverflowError):
        raise CheckinError(f"{what} must be a date such as 2026-12-01, not {text!r}") from None


def parse_checkin_input(values: Mapping[str, Any], settings: Settings, now: datetime | None = None) -> CheckinInput:
    """Read a check-in from a JSON object (the console builds the same shape from its form); `CheckinError` says why.

    Fields: `title_en`, `title_st`, `questions` (each `kind`, `text_en`, `text_st`, and `options` [{en, st}] for a
    choice or `min`/`max` for a number), the campaign audience fields, `opens_at` and `closes_at` (dates or times,
    Lesotho time; the closing date is inclusive), `remind_after_days` (0: no reminder).
    """
    now = now or utcnow()
    questions = values.get("questions") or []
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
        raise CheckinError(f"a check-in has 1 to {MAX_QUESTIONS} questions")
    parsed = tuple(
        _question(number, question if isinstance(question, Mapping) else {})
        for number, question in enumerate(questions, start=1)
    )
    try:
        # The campaigns' own reading of an audience, so that the two never mean different people by the same fields.
        audience = parse_campaign_input({field: values.get(field) for field in AUDIENCE_FIELDS}).audience
        check_audience(audience)
    except CampaignError as exc:
        raise CheckinError(str(exc)) from None
    opens_at = _moment("the opening date", _scalar(values.get("opens_at")), end_of_day=False) or now
    closes_at = _moment("the closing date", _scalar(values.get("closes_at")), end_of_day=True)
    if closes_at is None:
        try:
            closes_at = opens_at + timedelta(days=DEFAULT_OPEN_DAYS)
        except OverflowError:
            raise CheckinError("the opening date is too far ahead") from None
    if closes_at <= max(opens_at, now):
        raise CheckinError("the closing date must be after the opening date and in the future")
    reminder = _whole("the reminder days", values.get("remind_after_days"))
    reminder = settings.checkin_reminder_days if reminder is None else reminder
    if not 0 <= reminder <= MAX_REMINDER_DAYS:
        raise CheckinError(f"the reminder goes 1 to {MAX_REMINDER_DAYS} days after sending (0: no reminder)")
    return CheckinInput(
        title_en=_screen_text("the English title", _scalar(values.get("title_en")), MAX_TITLE_CHARS),
        title_st=_screen_text("the Sesotho title", _scalar(values.get("title_st")), MAX_TITLE_CHARS),
        questions=parsed,
        audience=audience,
        opens_at=opens_at,
        closes_at=closes_at,
        remind_after_days=reminder,
    )


# -- who may see what -----------------------------------------------------------------------------------------


def checkin_within(actor: Actor, checkin: Checkin) -> bool:
    """Whether `checkin` reaches only people in `actor`'s districts (the campaigns' rule)."""
    allowed = actor.district_list
    if not allowed:
        return True
    districts = Audience.from_json(checkin.audience_json).districts
    return bool(districts) and all(district in allowed for district in districts)


def find_checkin(session: Session, actor: Actor, checkin_id: int) -> Checkin:
    checkin = session.get(Checkin, checkin_id)
    if checkin is None or not checkin_within(actor, checkin):
        raise CheckinNotFoundError(f"no check-in {checkin_id} within your districts")
    return checkin


def visible_checkins(session: Session, actor: Actor) -> list[Checkin]:
    """Newest first, the ones within the actor's districts."""
    checkins = session.execute(select(Checkin).order_by(Checkin.id.desc())).scalars().all()
    return [checkin for checkin in checkins if checkin_within(actor, checkin)]


def effective_status(checkin: Checkin, now: datetime | None = None) -> str:
    """The status staff see: an open check-in past its closing time is closed, even before the sweep says so."""
    if checkin.status == CheckinStatus.OPEN and as_utc(checkin.closes_at) <= (now or utcnow()):
        return CheckinStatus.CLOSED
    return checkin.status


# -- actions ---------------------------------------------------------------------------------------------------


def create_checkin(
    session: Session, actor: Actor, values: Mapping[str, Any], settings: Settings, *, now: datetime | None = None
) -> Checkin:
    """A draft check-in from `actor`'s input, with its audit entry. Does not commit."""
    actor.require_role(CHECKIN_ROLE)
    given = parse_checkin_input(values, settings, now)
    try:
        limit_to_districts(given.audience, actor)
    except CampaignError as exc:
        raise CheckinError(str(exc)) from None
    checkin = Checkin(
        title_en=given.title_en,
        title_st=given.title_st,
        status=CheckinStatus.DRAFT,
        audience_json=given.audience.to_json(),
        opens_at=given.opens_at,
        closes_at=given.closes_at,
        remind_after_days=given.remind_after_days,
        created_by=actor.name,
        questions=[
            CheckinQuestion(
                position=position,
                kind=question.kind,
                text_en=question.text_en,
                text_st=question.text_st,
                options_json=json.dumps([list(pair) for pair in question.options]),
                min_value=question.low,
                max_value=question.high,
            )
            for position, question in enumerate(given.questions, start=1)
        ],
    )
    session.add(checkin)
    session.flush()
    actor.audit(
        session,
        f"{AUDIT_OBJECT}.create",
        AUDIT_OBJECT,
        checkin.id,
        title=checkin.title_en,
        questions=len(given.questions),
        audience=checkin.audience_json,
        opens_at=given.opens_at.isoformat(),
        closes_at=given.closes_at.isoformat(),
    )
    return checkin


def closing_day(checkin: Checkin) -> str:
    """The last Lesotho day a check-in takes answers, as the SMS say it."""
    return lesotho_time(as_utc(checkin.closes_at) - timedelta(seconds=1)).date().isoformat()


def invitation_texts(checkin: Checkin, key: str) -> dict[str, str]:
    """The invitation or reminder SMS (`checkin.invitation`, `checkin.reminder`) per language, rendered whole."""
    return {
        language: sms_catalogue().get(
            f"checkin.{key}",
            language,
            title=checkin.title_for(language),
            count=len(checkin.questions),
            closes=closing_day(checkin),
        )
        for language in Language
    }


def bulk_campaign(session: Session, checkin: Checkin, key: str, *, pending_only: bool, now: datetime) -> Campaign:
    """The campaign that carries a check-in's invitation or reminder to the people it invited."""
    audience = Audience.from_json(checkin.audience_json)
    audience.checkin_id, audience.checkin_pending_only = checkin.id, pending_only
    texts = invitation_texts(checkin, key)
    campaign = create_campaign(
        session,
        name=f"Check-in {checkin.id} {key}: {checkin.title_en}"[:120],
        text_en=texts[Language.ENGLISH],
        text_st=texts[Language.SESOTHO],
        audience=audience,
        created_by=checkin.created_by,
        send_at=checkin.opens_at if as_utc(checkin.opens_at) > now else None,
        kind=CampaignKind.CHECKIN,
    )
    send_campaign(session, campaign, now)
    return campaign


def send_checkin(session: Session, actor: Actor, checkin: Checkin, *, now: datetime | None = None) -> Campaign:
    """Invite everyone in the audience (one invitation per person) and owe them the invitation SMS.

    Returns the invitation campaign; after the commit, `start_invitations(redis, campaign)`. Does not commit.
    """
    actor.require_role(CHECKIN_ROLE)
    if not checkin_within(actor, checkin):
        raise CheckinNotFoundError(f"no check-in {checkin.id} within your districts")
    now = now or utcnow()
    if checkin.status != CheckinStatus.DRAFT:
        raise CheckinError(f"a {checkin.status} check-in cannot be sent; only a draft can")
    if as_utc(checkin.closes_at) <= now:
        raise CheckinError("the closing date has passed; set a new one in a new check-in")
    people = audience_select(
        [
            literal(checkin.id),
            Beneficiary.id,
            Contact.id,
            literal(InvitationStatus.INVITED.value),
            literal(now),
        ],
        Audience.from_json(checkin.audience_json),
        now,
        per_phone=False,
    )
    people = people.where(NOT_ERASED)
    columns = ["checkin_id", "beneficiary_id", "contact_id", "status", "invited_at"]
    invited = len(
        session.execute(insert(CheckinInvitation).from_select(columns, people).returning(CheckinInvitation.id)).all()
    )
    if not invited:
        raise CheckinError("nobody is in this audience")
    checkin.status, checkin.sent_at = CheckinStatus.OPEN, now
    campaign = bulk_campaign(session, checkin, "invitation", pending_only=False, now=now)
    checkin.campaign_id = campaign.id
    session.flush()
    actor.audit(session, f"{AUDIT_OBJECT}.send", AUDIT_OBJECT, checkin.id, invited=invited, campaign=campaign.id)
    log.info("check-in %s sent: %d people invited, campaign %s", checkin.id, invited, campaign.id)
    return campaign


def start_invitations(connection: redis.Redis, checkin: Checkin, campaign: Campaign) -> None:
    """After the commit: tell the USSD menu a check-in is open, and start the fan-out of the invitation (or
    reminder) campaign, unless it waits for its time."""
    try:
        announce_open(connection, checkin.closes_at)
    except redis.RedisError:
        log.warning("could not tell the menu check-in %s is open; the sweep will", checkin.id, exc_info=True)
    start_sending(connection, campaign.id, campaign.status)


class CheckinAction(StrEnum):
    """What staff may do to a check-in after defining it; the console and the API name them in their URLs."""

    SEND = "send"
    CLOSE = "close"


def steer_checkin(
    session: Session, actor: Actor, checkin: Checkin, action: CheckinAction | str, *, now: datetime | None = None
) -> Campaign | None:
    """Send or close, as the console and the API ask; `CheckinError` when the check-in's status refuses it.

    Returns the invitation campaign of a send (after the commit, `start_invitations`), else None. Does not commit.
    """
    if CheckinAction(action) == CheckinAction.SEND:
        return send_checkin(session, actor, checkin, now=now)
    close_checkin(session, actor, checkin, now=now)
    return None


def announce_open(connection: redis.Redis, closes_at: datetime) -> None:
    """Push the menu's "a check-in may be open until" mark (`CHECKINS_OPEN_UNTIL_KEY`) out to `closes_at`.

    A mark too late only costs a database read per dial; one too early would hide `7`, so it only ever grows here,
    and the worker's sweep sets it from the database every run (`reminders.refresh_open_mark`).
    """
    current = connection.get(CHECKINS_OPEN_UNTIL_KEY)
    until = as_utc(closes_at).timestamp()
    if current is None or float(current) < until:
        connection.set(CHECKINS_OPEN_UNTIL_KEY, until)


def close_checkin(session: Session, actor: Actor, checkin: Checkin, *, now: datetime | None = None) -> None:
    """Stop taking answers now (the answers stay); invitations and reminders not yet sent are withdrawn."""
    actor.require_role(CHECKIN_ROLE)
    if not checkin_within(actor, checkin):
        raise CheckinNotFoundError(f"no check-in {checkin.id} within your districts")
    if checkin.status == CheckinStatus.CLOSED:
        raise CheckinError("this check-in is already closed")
    before = checkin.status
    close(session, checkin, now or utcnow())
    actor.audit(session, f"{AUDIT_OBJECT}.close", AUDIT_OBJECT, checkin.id, before=before)


def close(session: Session, checkin: Checkin, now: datetime) -> None:
    """Close `checkin` and withdraw what its campaigns have not sent (staff, or the sweep at the closing time)."""
    checkin.status, checkin.closed_at = CheckinStatus.CLOSED, now
    if as_utc(checkin.closes_at) > now:
        checkin.closes_at = now
    for campaign_id in (checkin.campaign_id, checkin.reminder_campaign_id):
        campaign = session.get(Campaign, campaign_id) if campaign_id else None
        if campaign is not None and campaign.status in _STOPPABLE:
            move_campaign(session, campaign, CampaignStatus.CANCELLED, now)
    session.flush()


def audience_size(session: Session, checkin: Checkin, now: datetime | None = None) -> tuple[int, int]:
    """(people sending would ask, of whom with alerts off): what staff see before they send a draft."""
    rows = session.execute(
        audience_select(
            [Contact.alerts_on, func.count()],
            Audience.from_json(checkin.audience_json),
            now or utcnow(),
            per_phone=False,
        ).group_by(Contact.alerts_on)
    ).all()
    total = sum(count for _, count in rows)
    return total, sum(count for alerts_on, count in rows if not alerts_on)


def invitation_counts(session: Session, checkin: Checkin) -> dict[str, int]:
    """Invitations by status (every status present, zero included)."""
    rows = session.execute(
        select(CheckinInvitation.status, func.count())
        .where(CheckinInvitation.checkin_id == checkin.id)
        .group_by(CheckinInvitation.status)
    ).all()
    counts = dict.fromkeys((str(status) for status in InvitationStatus), 0)
    counts.update({status: count for status, count in rows})
    return counts
