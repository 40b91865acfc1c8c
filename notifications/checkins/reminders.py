"""The worker's part in check-ins: close those past their closing time, and send each one's reminder once.

The reminder is a bulk campaign to the people the check-in invited who have neither answered nor declined, decided
when its fan-out runs (`Audience.checkin_pending_only`), so someone who answers in the meantime is left out. "Once"
is a conditional `UPDATE … WHERE reminder_campaign_id IS NULL` in the transaction that creates the campaign: two
sweeps at once write one reminder, and the loser's campaign is rolled back with its transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
from sqlalchemy import func, select, update

from models.campaigns import Campaign
from models.checkins import Checkin, CheckinStatus
from models.clock import as_utc, utcnow
from models.db import Database
from models.ussd import CHECKINS_OPEN_UNTIL_KEY
from notifications.checkins.definitions import bulk_campaign, close, start_invitations

log = logging.getLogger(__name__)


class ReminderTakenError(Exception):
    """Another sweep wrote this check-in's reminder first."""


def sweep_checkins(db: Database, connection: redis.Redis, now: datetime | None = None) -> dict[str, int]:
    """Close check-ins past their closing time; send the reminders that are due. Returns what it did."""
    now = now or utcnow()
    with db.session() as session:
        expired = session.execute(
            select(Checkin).where(Checkin.status == CheckinStatus.OPEN, Checkin.closes_at <= now)
        ).scalars()
        closed = 0
        for checkin in expired:
            close(session, checkin, now)
            closed += 1
        candidates = (
            session.execute(
                select(Checkin.id, Checkin.sent_at, Checkin.opens_at, Checkin.remind_after_days).where(
                    Checkin.status == CheckinStatus.OPEN,
                    Checkin.reminder_campaign_id.is_(None),
                    Checkin.remind_after_days > 0,
                )
            )
        ).all()
    due = [
        checkin_id
        for checkin_id, sent_at, opens_at, days in candidates
        if max(as_utc(sent_at), as_utc(opens_at)) + timedelta(days=days) <= now
    ]
    reminded = 0
    for checkin_id in due:
        reminder = _remind(db, checkin_id, now)
        if reminder is not None:
            reminded += 1
            start_invitations(connection, *reminder)
    refresh_open_mark(db, connection, now)
    return {"checkins_closed": closed, "checkin_reminders": reminded}


def refresh_open_mark(db: Database, connection: redis.Redis, now: datetime) -> None:
    """Set the menu's "a check-in may be open until" mark from the database: the latest closing time of an open
    check-in, or 0. This is what restores it after Redis lost it, and lowers it once check-ins close."""
    with db.session() as session:
        latest = session.execute(
            select(func.max(Checkin.closes_at)).where(Checkin.status == CheckinStatus.OPEN, Checkin.closes_at > now)
        ).scalar()
    connection.set(CHECKINS_OPEN_UNTIL_KEY, as_utc(latest).timestamp() if latest else 0)


def _remind(db: Database, checkin_id: int, now: datetime) -> tuple[Checkin, Campaign] | None:
    try:
        with db.session() as session:
            checkin = session.get(Checkin, checkin_id)
            campaign = bulk_campaign(session, checkin, "reminder", pending_only=True, now=now)
            taken = session.execute(
                update(Checkin)
                .where(Checkin.id == checkin_id, Checkin.reminder_campaign_id.is_(None))
                .values(reminder_campaign_id=campaign.id)
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken != 1:
                raise ReminderTakenError(checkin_id)
    except ReminderTakenError:
        log.info("reminder of check-in %s already written by another sweep", checkin_id)
        return None
    log.info("reminder of check-in %s: campaign %s", checkin_id, campaign.id)
    return checkin, campaign
