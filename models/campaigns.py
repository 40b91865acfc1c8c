"""Bulk SMS campaigns and the recurring COVID-19 series: who gets what, when, and how far sending has come."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, UtcDateTime


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Legal moves of a campaign; everything else is refused with a reason.
CAMPAIGN_TRANSITIONS = {
    CampaignStatus.DRAFT: {CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.CANCELLED},
    CampaignStatus.SCHEDULED: {CampaignStatus.SENDING, CampaignStatus.CANCELLED, CampaignStatus.DRAFT},
    CampaignStatus.SENDING: {CampaignStatus.PAUSED, CampaignStatus.CANCELLED, CampaignStatus.COMPLETED},
    CampaignStatus.PAUSED: {CampaignStatus.SENDING, CampaignStatus.CANCELLED},
    CampaignStatus.COMPLETED: set(),
    CampaignStatus.CANCELLED: set(),
}


class CampaignKind(StrEnum):
    CAMPAIGN = "campaign"  # written by staff
    COVID_SERIES = "covid_series"  # one message of the recurring COVID-19 series
    CHECKIN = "checkin"  # the invitation or the reminder of a follow-up check-in (models.checkins)


@dataclass
class Audience:
    """Who a campaign is for. Empty lists mean "any". Numbers that sent STOP are always left out (and counted).

    `registered_only` is what staff campaigns use: only beneficiaries, so placeholders such as `{reference}` have
    values. The COVID-19 series turns it off to reach every number that chose alerts, registered or not.
    """

    districts: list[str] = field(default_factory=list)
    sexes: list[str] = field(default_factory=list)
    grant_statuses: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    age_min: int | None = None
    age_max: int | None = None
    registered_from: date | None = None
    registered_to: date | None = None  # inclusive
    registered_only: bool = True
    # A check-in's invitation or reminder: only the people it invited (and, for the reminder, only those who have
    # neither answered nor declined), whatever else the audience says.
    checkin_id: int | None = None
    checkin_pending_only: bool = False

    def to_json(self) -> str:
        values = asdict(self)
        for key in ("registered_from", "registered_to"):
            if values[key] is not None:
                values[key] = values[key].isoformat()
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | None) -> Audience:
        values = json.loads(raw or "{}")
        for key in ("registered_from", "registered_to"):
            if values.get(key):
                values[key] = date.fromisoformat(values[key])
        return cls(**values)


class Campaign(TimestampMixin, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16), default=CampaignKind.CAMPAIGN)
    text_en: Mapped[str] = mapped_column(Text)
    text_st: Mapped[str] = mapped_column(Text)
    audience_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(12), default=CampaignStatus.DRAFT, index=True)
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: as soon as it is sent
    created_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Fan-out progress: contacts with an id up to the cursor have their message row (or were excluded).
    fanout_cursor: Mapped[int] = mapped_column(Integer, default=0)
    fanout_done: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded_opted_out: Mapped[int] = mapped_column(Integer, default=0)
    series_message_key: Mapped[str | None] = mapped_column(String(40), index=True)  # COVID series: which message

    @property
    def audience(self) -> Audience:
        return Audience.from_json(self.audience_json)

    def text_for(self, language: str) -> str:
        return self.text_st if language == "st" else self.text_en

    def __repr__(self) -> str:
        return f"<Campaign id={self.id} status={self.status}>"


class CovidSeries(TimestampMixin, Base):
    """The recurring COVID-19 series: every `interval_days`, the next message of the library to alerts-on numbers."""

    __tablename__ = "covid_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_days: Mapped[int] = mapped_column(Integer, default=7)
    next_index: Mapped[int] = mapped_column(Integer, default=0)  # position in the library of the next message
    next_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
