"""Programme time: the clock every timestamp comes from, and the Lesotho days staff, reports and campaigns count in.

Timestamps are stored in UTC. People think in Lesotho time (Africa/Maseru, UTC+2 all year): a date an officer types
("registered from 2026-11-01"), a report period, a send time without an offset, the quiet hours. Turning a date into
a time boundary happens here and nowhere else, so that a campaign audience, the beneficiary list and a report given
the same dates count the same people; a boundary taken at midnight UTC instead would be two hours off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The programme's time zone. Lesotho keeps no daylight saving.
LESOTHO = ZoneInfo("Africa/Maseru")
ONE_DAY = timedelta(days=1)


def utcnow() -> datetime:
    """Now, aware, in UTC: what every stored timestamp is."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC, so a naive one is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lesotho_time(moment: datetime) -> datetime:
    """A stored moment as people in Lesotho read it (a naive one is UTC, as stored)."""
    return as_utc(moment).astimezone(LESOTHO)


def lesotho_today(now: datetime | None = None) -> date:
    """The date in Lesotho at `now` (default: now); until 02:00 there it is still yesterday in UTC."""
    return lesotho_time(now or utcnow()).date()


def from_lesotho(moment: datetime) -> datetime:
    """A time someone typed: without an offset it is Lesotho time (what an officer means by "09:00")."""
    return moment if moment.tzinfo else moment.replace(tzinfo=LESOTHO)


def start_of_lesotho_day(day: date) -> datetime:
    """The UTC moment `day` starts in Lesotho: the inclusive lower bound of "from `day`"."""
    return datetime.combine(day, time.min, tzinfo=LESOTHO).astimezone(UTC)


def end_of_lesotho_day(day: date) -> datetime:
    """The UTC moment `day` ends in Lesotho, which is when the next one starts: the exclusive upper bound of
    "to `day`, inclusive" (`column < end_of_lesotho_day(day)`)."""
    return start_of_lesotho_day(day + ONE_DAY)
