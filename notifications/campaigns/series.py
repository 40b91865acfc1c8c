"""The COVID-19 safety series: a library of short messages, sent one at a time, on a schedule, to alerts-on numbers.

Each run becomes an ordinary campaign (so it can be previewed, paused and counted like any other) whose audience
is every number with alerts on, registered or not, minus those who already got that message in an earlier run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.actors import Actor, PermissionDeniedError
from models.campaigns import Audience, CampaignKind, CovidSeries
from models.clock import as_utc, utcnow
from models.db import Database
from models.people import Language
from models.staff import Role
from notifications.campaigns.lifecycle import create_campaign, send_campaign
from notifications.sms.texts import sms_catalogue

LIBRARY_PREFIX = "covid_series."
SERIES_ACTOR = "covid-series"
AUDIT_OBJECT = "covid_series"
# The least role that may start or stop the series, as for any campaign.
SERIES_ROLE = Role.OFFICER


def library() -> list[str]:
    """The series' message keys, in sending order (`covid_series.m01`, `covid_series.m02`, ...)."""
    return sorted(key for key in sms_catalogue().key_set() if key.startswith(LIBRARY_PREFIX))


def start_series(session: Session, actor: Actor, *, interval_days: int, first_run_at: datetime) -> CovidSeries:
    """Start (or re-time) the one series, with its audit entry. Its position in the library is kept when re-timed."""
    actor.require_role(SERIES_ROLE)
    if actor.district_list:
        # Like a campaign for every district, which a district-limited officer may not send either.
        raise PermissionDeniedError("the series reaches every district; you may send only to your districts")
    if interval_days < 1:
        raise ValueError("the series needs an interval of at least one day")
    series = session.execute(select(CovidSeries).order_by(CovidSeries.id).limit(1)).scalar_one_or_none()
    if series is None:
        series = CovidSeries(next_index=0, created_by=actor.name)
        session.add(series)
    series.active = True
    series.interval_days = interval_days
    series.next_run_at = first_run_at
    session.flush()
    actor.audit(
        session,
        f"{AUDIT_OBJECT}.start",
        AUDIT_OBJECT,
        series.id,
        interval_days=interval_days,
        first_run_at=first_run_at.isoformat(),
    )
    return series


def stop_series(session: Session, actor: Actor) -> bool:
    """Stop the series, with its audit entry; False (and no entry) when it was not running.

    Stopping only holds messages back, so, as with pausing a campaign, any officer may do it.
    """
    actor.require_role(SERIES_ROLE)
    series = session.execute(select(CovidSeries).where(CovidSeries.active.is_(True))).scalar_one_or_none()
    if series is None:
        return False
    series.active = False
    actor.audit(session, f"{AUDIT_OBJECT}.stop", AUDIT_OBJECT, series.id)
    return True


def run_due_series(db: Database, now: datetime | None = None) -> int:
    """If the series is due, create and start this run's campaign; returns 1 if a run started, else 0."""
    now = now or utcnow()
    keys = library()
    with db.session() as session:
        series = session.execute(
            select(CovidSeries).where(CovidSeries.active.is_(True), CovidSeries.next_run_at <= now).with_for_update()
        ).scalar_one_or_none()
        if series is None or not keys:
            return 0
        key = keys[series.next_index % len(keys)]
        catalogue = sms_catalogue()
        campaign = create_campaign(
            session,
            name=f"COVID-19 series: {key.removeprefix(LIBRARY_PREFIX)}",
            text_en=catalogue.get(key, Language.ENGLISH),
            text_st=catalogue.get(key, Language.SESOTHO),
            audience=Audience(registered_only=False),
            created_by=SERIES_ACTOR,
            kind=CampaignKind.COVID_SERIES,
            series_message_key=key,
        )
        send_campaign(session, campaign, now)
        series.next_index = (series.next_index + 1) % len(keys)
        interval = timedelta(days=series.interval_days)
        next_run = as_utc(series.next_run_at)
        while next_run <= now:  # a series that was down for weeks sends once, not once per missed week
            next_run += interval
        series.next_run_at = next_run
        return 1
