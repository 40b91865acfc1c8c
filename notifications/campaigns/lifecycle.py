"""Bulk campaigns: validate, preview, fan out to message rows, and steer (pause, resume, cancel, complete).

Fan-out is set-based: one `INSERT … SELECT` per chunk of contact ids renders every recipient's text in SQL, so no
recipient list is ever held in memory. Each chunk moves the campaign's cursor in the same transaction, guarded by
the cursor's old value, and a unique (campaign, contact) index backs it up: a fan-out that is killed and started
again, or two that race, write each recipient's message exactly once.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, exists, func, insert, literal, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from config import Settings
from models.campaigns import CAMPAIGN_TRANSITIONS, Audience, Campaign, CampaignKind, CampaignStatus
from models.checkins import PENDING_INVITATION_STATUSES, CheckinInvitation
from models.clock import as_utc, end_of_lesotho_day, lesotho_time, start_of_lesotho_day, utcnow
from models.grants import Grant, GrantStatus
from models.messages import (
    UNSENT_MESSAGE_STATUSES,
    WITHDRAWABLE_MESSAGE_STATUSES,
    MessageGroup,
    MessageKind,
    MessagePriority,
    MessageStatus,
    OutboundMessage,
    count_by_group,
)
from models.people import DISTRICTS, Beneficiary, Contact, Language, Sex
from models.phone import mask_phone
from models.reference import REFERENCE_BODY_DIGITS
from notifications.sms.encoding import non_gsm_characters, sms_parts

log = logging.getLogger(__name__)

PLACEHOLDERS = ("first_name", "reference", "district")
# Contacts per fan-out transaction: small enough to keep locks short (a chunk locks only the rows it writes and the
# campaign's), big enough that the per-chunk statements and commit are a small part; at 10,000 PostgreSQL planned the
# chunk's joins as hashes over whole tables, slower per row.
FANOUT_CHUNK = 5000
SAMPLE_COUNT = 3
LONGEST_DISTRICT = max(len(name) for name in DISTRICTS)


class CampaignError(ValueError):
    """A campaign request that cannot be done; the message says why."""


# -- creating ---------------------------------------------------------------------------------------------------


def check_text(text: str, *, allow_placeholders: bool = True) -> None:
    """Refuse empty texts and unknown placeholders (a typo such as `{firstname}` would go out as written)."""
    if not text.strip():
        raise CampaignError("the text is empty")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise CampaignError(f"the text has an unmatched brace: {exc}") from None
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise CampaignError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(PLACEHOLDERS)}")
    if names and not allow_placeholders:
        raise CampaignError("placeholders need registered recipients (this audience includes unregistered numbers)")


def check_audience(audience: Audience) -> None:
    for district in audience.districts:
        if district not in DISTRICTS:
            raise CampaignError(f"unknown district {district!r}; known: {', '.join(DISTRICTS)}")
    for value, known, what in (
        (audience.sexes, set(Sex), "sex"),
        (audience.grant_statuses, set(GrantStatus), "grant status"),
        (audience.languages, set(Language), "language"),
    ):
        for item in value:
            if item not in known:
                raise CampaignError(f"unknown {what} {item!r}; known: {', '.join(sorted(known))}")
    if audience.age_min is not None and audience.age_max is not None and audience.age_min > audience.age_max:
        raise CampaignError("the age band is empty (minimum above maximum)")
    if (audience.registered_from and audience.registered_to) and audience.registered_from > audience.registered_to:
        raise CampaignError("the registration dates are the wrong way round")
    uses_beneficiaries = any(
        (
            audience.districts,
            audience.sexes,
            audience.grant_statuses,
            audience.age_min is not None,
            audience.age_max is not None,
            audience.registered_from,
            audience.registered_to,
        )
    )
    if uses_beneficiaries and not audience.registered_only:
        raise CampaignError("filters on districts, sex, grants, age or dates reach registered beneficiaries only")


def create_campaign(
    session: Session,
    *,
    name: str,
    text_en: str,
    text_st: str,
    audience: Audience,
    created_by: str,
    send_at: datetime | None = None,
    kind: CampaignKind = CampaignKind.CAMPAIGN,
    series_message_key: str | None = None,
) -> Campaign:
    """A new draft campaign, or `CampaignError` saying what is wrong with it. Does not commit."""
    if not name.strip():
        raise CampaignError("the campaign needs a name")
    check_audience(audience)
    for text in (text_en, text_st):
        check_text(text, allow_placeholders=audience.registered_only)
    campaign = Campaign(
        name=name.strip(),
        kind=kind,
        text_en=text_en,
        text_st=text_st,
        audience_json=audience.to_json(),
        send_at=send_at,
        created_by=created_by,
        status=CampaignStatus.DRAFT,
        series_message_key=series_message_key,
    )
    session.add(campaign)
    session.flush()
    return campaign


# -- who -------------------------------------------------------------------------------------------------------


def _first_name(session: Session) -> ColumnElement:
    """The first word of the full name, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(Beneficiary.full_name, " ", 1)
    return func.substr(Beneficiary.full_name, 1, func.instr(Beneficiary.full_name + " ", " ") - 1)


def _language() -> ColumnElement:
    return func.coalesce(Contact.language, Language.ENGLISH.value)


def _person_conditions(audience: Audience, now: datetime, person, grant) -> list:
    """What the audience asks of a person and their grant (`person`, `grant`: the tables or aliases of them)."""
    conditions = []
    if audience.districts:
        conditions.append(person.district.in_(audience.districts))
    if audience.sexes:
        conditions.append(person.sex.in_(audience.sexes))
    if audience.grant_statuses:
        conditions.append(grant.status.in_(audience.grant_statuses))
    year = lesotho_time(now).year
    if audience.age_min is not None:
        conditions.append(person.year_of_birth <= year - audience.age_min)
    if audience.age_max is not None:
        conditions.append(person.year_of_birth >= year - audience.age_max)
    # Registration dates are Lesotho days, as in the beneficiary list and the reports.
    if audience.registered_from:
        conditions.append(person.created_at >= start_of_lesotho_day(audience.registered_from))
    if audience.registered_to:
        conditions.append(person.created_at < end_of_lesotho_day(audience.registered_to))
    if audience.checkin_id is not None:
        invited = select(1).where(
            CheckinInvitation.checkin_id == audience.checkin_id, CheckinInvitation.beneficiary_id == person.id
        )
        if audience.checkin_pending_only:
            invited = invited.where(CheckinInvitation.status.in_(PENDING_INVITATION_STATUSES))
        conditions.append(exists(invited))
    return conditions


def audience_select(
    columns: list, audience: Audience, now: datetime, campaign: Campaign | None = None, *, per_phone: bool = True
):
    """SELECT `columns` over contacts (joined to beneficiaries and grants) matching `audience`.

    With `per_phone`, one row per phone: a household phone where several people match gets one SMS, whose
    placeholders are those of the first of them to have registered (the phone is one inbox, and the programme pays
    for every SMS). Check-ins choose their people with `per_phone=False` (`notifications.checkins.definitions`):
    each person answers for themselves, so "an audience" means the same people whether it receives a campaign or a
    check-in.
    """
    query = select(*columns).select_from(Contact)
    if audience.registered_only:
        query = query.join(Beneficiary, Beneficiary.contact_id == Contact.id).join(
            Grant, Grant.beneficiary_id == Beneficiary.id
        )
    else:
        query = query.outerjoin(Beneficiary, Beneficiary.contact_id == Contact.id)
    conditions = _person_conditions(audience, now, Beneficiary, Grant)
    if audience.languages:
        conditions.append(_language().in_(audience.languages))
    if per_phone:
        # Nobody on the same phone who also matches registered before this person. A NOT EXISTS in the WHERE, so
        # that the database may make it an anti-join: hashed over a whole audience (a preview at a million people),
        # an index probe per row over a fan-out's chunk. A look-up of the lowest id per row costs seconds there.
        other, other_grant = aliased(Beneficiary), aliased(Grant)
        earlier_match = (
            select(1)
            .select_from(other)
            .join(other_grant, other_grant.beneficiary_id == other.id)
            .where(
                other.contact_id == Beneficiary.contact_id,
                other.id < Beneficiary.id,
                *_person_conditions(audience, now, other, other_grant),
            )
        )
        conditions.append(~exists(earlier_match))
    if campaign is not None and campaign.series_message_key:
        # The COVID series: each message at most once per person, across every run of the series.
        earlier = aliased(Campaign)
        conditions.append(
            ~exists(
                select(1)
                .select_from(OutboundMessage)
                .join(earlier, earlier.id == OutboundMessage.campaign_id)
                .where(
                    OutboundMessage.contact_id == Contact.id,
                    earlier.series_message_key == campaign.series_message_key,
                    earlier.id != campaign.id,
                )
            )
        )
    return query.where(*conditions)


# -- preview ---------------------------------------------------------------------------------------------------


@dataclass
class CampaignPreview:
    recipients: dict[str, int]  # by language
    excluded_opted_out: int
    parts: dict[str, int]  # worst case per message, by language
    cost: float  # estimated, in maloti
    samples: list[tuple[str, str, str]] = field(default_factory=list)  # (language, masked phone, text)
    non_gsm: dict[str, list[str]] = field(default_factory=dict)  # characters outside GSM-7, by language

    @property
    def total(self) -> int:
        return sum(self.recipients.values())


def worst_case_parts(text: str, longest_first_name: int) -> int:
    """Parts of `text` with every placeholder at its longest value among the recipients."""
    return sms_parts(
        text.replace("{first_name}", "x" * longest_first_name)
        .replace("{reference}", "9" * (REFERENCE_BODY_DIGITS + 1))
        .replace("{district}", "x" * LONGEST_DISTRICT)
    )


def render(text: str, *, first_name: str = "", reference: str = "", district: str = "") -> str:
    return text.replace("{first_name}", first_name).replace("{reference}", reference).replace("{district}", district)


def preview_campaign(session: Session, campaign: Campaign, settings: Settings, now: datetime | None = None):
    """What sending would do: recipients per language, parts, cost, samples, and alphabet warnings."""
    now = now or utcnow()
    audience = campaign.audience
    language = _language()
    counts = session.execute(
        audience_select([language, Contact.alerts_on, func.count()], audience, now, campaign).group_by(
            language, Contact.alerts_on
        )
    ).all()
    recipients = {lang.value: 0 for lang in Language}
    excluded = 0
    for lang, alerts_on, count in counts:
        if alerts_on:
            recipients[lang] = recipients.get(lang, 0) + count
        else:
            excluded += count
    longest = 0
    if audience.registered_only:
        longest = (
            session.execute(
                audience_select([func.max(func.length(Beneficiary.full_name))], audience, now, campaign)
            ).scalar()
            or 0
        )
    parts = {lang.value: worst_case_parts(campaign.text_for(lang), longest) for lang in Language}
    cost = sum(recipients[lang] * parts[lang] for lang in recipients) * settings.sms_price_per_part
    samples = []
    if audience.registered_only:
        rows = session.execute(
            audience_select(
                [language, Contact.phone, _first_name(session), Beneficiary.reference, Beneficiary.district],
                audience,
                now,
                campaign,
            )
            .where(Contact.alerts_on.is_(True))
            .order_by(Contact.id)
            .limit(SAMPLE_COUNT)
        ).all()
        for lang, phone, first_name, reference, district in rows:
            text = render(campaign.text_for(lang), first_name=first_name, reference=reference, district=district)
            samples.append((lang, mask_phone(phone), text))
    else:
        samples = [(lang.value, "-", campaign.text_for(lang)) for lang in Language]
    non_gsm = {lang.value: non_gsm_characters(campaign.text_for(lang)) for lang in Language}
    return CampaignPreview(
        recipients=recipients,
        excluded_opted_out=excluded,
        parts=parts,
        cost=round(cost, 2),
        samples=samples,
        non_gsm={lang: chars for lang, chars in non_gsm.items() if chars},
    )


# -- steering --------------------------------------------------------------------------------------------------


def move_campaign(session: Session, campaign: Campaign, to_status: CampaignStatus, now: datetime | None = None) -> None:
    """Change a campaign's status, or raise `CampaignError` for a move its lifecycle does not allow."""
    current = CampaignStatus(campaign.status)
    if to_status not in CAMPAIGN_TRANSITIONS[current]:
        raise CampaignError(f"a {current} campaign cannot be {_verb(to_status)}")
    now = now or utcnow()
    campaign.status = to_status
    if to_status == CampaignStatus.SENDING and campaign.started_at is None:
        campaign.started_at = now
    if to_status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        campaign.completed_at = now
    if to_status == CampaignStatus.CANCELLED:
        session.execute(
            update(OutboundMessage)
            .where(
                OutboundMessage.campaign_id == campaign.id, OutboundMessage.status.in_(WITHDRAWABLE_MESSAGE_STATUSES)
            )
            .values(status=MessageStatus.CANCELLED, final_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()


def _verb(status: CampaignStatus) -> str:
    return {
        CampaignStatus.SENDING: "sent or resumed",
        CampaignStatus.SCHEDULED: "scheduled",
        CampaignStatus.PAUSED: "paused",
        CampaignStatus.CANCELLED: "cancelled",
        CampaignStatus.COMPLETED: "completed",
        CampaignStatus.DRAFT: "returned to draft",
    }[status]


def send_campaign(session: Session, campaign: Campaign, now: datetime | None = None) -> CampaignStatus:
    """Send now, or schedule for `send_at` when that is still ahead. The caller enqueues the fan-out if sending."""
    now = now or utcnow()
    send_at = campaign.send_at
    target = CampaignStatus.SCHEDULED if send_at is not None and as_utc(send_at) > now else CampaignStatus.SENDING
    move_campaign(session, campaign, target, now)
    return target


def start_due_campaigns(session: Session, now: datetime | None = None) -> list[int]:
    """Scheduled campaigns whose time has come move to `sending`; returns their ids (to fan out)."""
    now = now or utcnow()
    due = session.execute(
        select(Campaign).where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now)
    ).scalars()
    started = []
    for campaign in due:
        move_campaign(session, campaign, CampaignStatus.SENDING, now)
        started.append(campaign.id)
    return started


def complete_finished_campaigns(session: Session, now: datetime | None = None) -> list[int]:
    """Sending campaigns whose fan-out is done and whose every message has left become `completed`."""
    in_flight = exists(
        select(1).where(OutboundMessage.campaign_id == Campaign.id, OutboundMessage.status.in_(UNSENT_MESSAGE_STATUSES))
    )
    done = session.execute(
        select(Campaign).where(Campaign.status == CampaignStatus.SENDING, Campaign.fanout_done.is_(True), ~in_flight)
    ).scalars()
    finished = []
    for campaign in done:
        move_campaign(session, campaign, CampaignStatus.COMPLETED, now)
        finished.append(campaign.id)
    return finished


# -- fan-out ---------------------------------------------------------------------------------------------------


def fanout_chunk(
    session: Session, campaign: Campaign, upper_contact_id: int, longest_name: int, now: datetime | None = None
) -> int:
    """Write the messages of contacts in (cursor, cursor + FANOUT_CHUNK]; returns how many. Commit per chunk.

    The cursor moves first, with its old value as a guard: if another fan-out of the same campaign moved it in the
    meantime, nothing is written here (`CampaignError`), and the caller looks again.
    """
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # A chunk's commit need not wait for its WAL to reach the disk: if the server crashed before it did, the
        # chunk's rows and its cursor move would be lost together, and the fan-out would write the chunk again.
        session.execute(sql_text("SET LOCAL synchronous_commit = off"))
    low = campaign.fanout_cursor
    # The id of the FANOUT_CHUNK-th contact after the cursor, so that gaps in the ids never make empty chunks.
    nth = session.execute(
        select(Contact.id).where(Contact.id > low).order_by(Contact.id).offset(FANOUT_CHUNK - 1).limit(1)
    ).scalar()
    high = min(nth if nth is not None else upper_contact_id, upper_contact_id)
    audience = campaign.audience
    in_chunk = and_(Contact.id > low, Contact.id <= high)
    excluded = session.execute(
        audience_select([func.count()], audience, now, campaign).where(in_chunk, Contact.alerts_on.is_(False))
    ).scalar_one()
    moved = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.fanout_cursor == low)
        .values(
            fanout_cursor=high,
            fanout_done=high >= upper_contact_id,
            excluded_opted_out=Campaign.excluded_opted_out + excluded,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise CampaignError("another fan-out of this campaign is running")
    language = _language()
    longest = longest_name
    body = case(
        (language == Language.SESOTHO.value, _render_sql(session, campaign.text_st, audience)),
        else_=_render_sql(session, campaign.text_en, audience),
    )
    parts = case(
        (language == Language.SESOTHO.value, literal(worst_case_parts(campaign.text_st, longest))),
        else_=literal(worst_case_parts(campaign.text_en, longest)),
    )
    rows = audience_select(
        [
            Contact.phone,
            Contact.id,
            literal(MessageKind.CAMPAIGN.value),
            literal(MessagePriority.BULK.value),
            language,
            body,
            literal(MessageStatus.QUEUED.value),
            parts,
            literal(0),
            literal(campaign.id),
            literal(now),
            literal(now),
        ],
        audience,
        now,
        campaign,
    ).where(
        in_chunk,
        Contact.alerts_on.is_(True),
        # Bounded by the chunk too, so that the probe reads the unique (campaign, contact) index over this chunk's
        # range only: unbounded, PostgreSQL hashed every message the campaign had so far, for every chunk, and a
        # million-recipient fan-out took minutes instead of seconds.
        ~exists(
            select(1).where(
                OutboundMessage.campaign_id == campaign.id,
                OutboundMessage.contact_id > low,
                OutboundMessage.contact_id <= high,
                OutboundMessage.contact_id == Contact.id,
            )
        ),
    )
    columns = [
        "phone",
        "contact_id",
        "kind",
        "priority",
        "language",
        "body",
        "status",
        "parts",
        "attempts",
        "campaign_id",
        "created_at",
        "updated_at",
    ]
    # RETURNING, because drivers do not agree on the row count of INSERT … SELECT (psycopg reports -1).
    return len(session.execute(insert(OutboundMessage).from_select(columns, rows).returning(OutboundMessage.id)).all())


def _render_sql(session: Session, text: str, audience: Audience) -> ColumnElement:
    """`text` with its placeholders replaced by each recipient's values, as a SQL expression."""
    expression: ColumnElement = literal(text)
    if not re.search(r"\{(first_name|reference|district)\}", text):
        return expression
    values = {"first_name": _first_name(session), "reference": Beneficiary.reference, "district": Beneficiary.district}
    for name, value in values.items():
        if "{" + name + "}" in text:
            expression = func.replace(expression, "{" + name + "}", value)
    return expression


def fanout_bounds(session: Session, campaign: Campaign, now: datetime | None = None) -> tuple[int, int]:
    """(highest contact id, longest full name in the audience) when a fan-out starts.

    A fan-out covers the contacts that exist when it starts; the longest name bounds each message's part count.
    """
    highest = session.execute(select(func.max(Contact.id))).scalar() or 0
    longest = 0
    if campaign.audience.registered_only:
        longest = (
            session.execute(
                audience_select([func.max(func.length(Beneficiary.full_name))], campaign.audience, now or utcnow())
            ).scalar()
            or 0
        )
    return highest, longest


# -- progress --------------------------------------------------------------------------------------------------


@dataclass
class CampaignProgress:
    """A campaign's messages counted by `models.messages.MessageGroup`, as the reports count them."""

    status: str
    recipients: int
    waiting: int  # queued or being sent
    submitted: int  # accepted by the provider, delivery not yet reported
    delivered: int
    failed: int
    cancelled: int
    excluded_opted_out: int
    fanout_done: bool

    @property
    def done(self) -> int:
        return self.submitted + self.delivered + self.failed + self.cancelled


def campaign_progress(session: Session, campaign: Campaign) -> CampaignProgress:
    """Counters read from the messages themselves (one indexed GROUP BY), so they are always right."""
    groups = count_by_group(
        session.execute(
            select(OutboundMessage.status, func.count())
            .where(OutboundMessage.campaign_id == campaign.id)
            .group_by(OutboundMessage.status)
        ).all()
    )
    return CampaignProgress(
        status=campaign.status,
        recipients=sum(groups.values()),
        waiting=groups[MessageGroup.WAITING],
        submitted=groups[MessageGroup.SUBMITTED],
        delivered=groups[MessageGroup.DELIVERED],
        failed=groups[MessageGroup.FAILED],
        cancelled=groups[MessageGroup.CANCELLED],
        excluded_opted_out=campaign.excluded_opted_out,
        fanout_done=campaign.fanout_done,
    )
