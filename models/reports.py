"""The figures the programme owes its donor and the Government.

Every indicator is one GROUP BY query over the whole table, whatever the number of beneficiaries, so that the
reports stay fast at 100,000 rows and more (the dashboard reads the same groupings kept as counts, recounted each
minute: see "the dashboard" below); the folding into tables and charts happens here, in Python, over at most a few
hundred grouped rows. Nothing here returns personal data: only counts and sums.

Ages are ages at registration (year of registration minus year of birth), so that a report for a past period
gives the same figures whenever it is run. Days, weeks and months are Lesotho days (Africa/Maseru, UTC+2).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Index,
    Numeric,
    String,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UtcDateTime
from models.clock import LESOTHO, end_of_lesotho_day, lesotho_time, lesotho_today, start_of_lesotho_day, utcnow
from models.db import insert_on_conflict
from models.grants import AMOUNT_PLACES, Grant, GrantStatus
from models.messages import MESSAGE_GROUPS, SENT_GROUPS, MessageGroup, MessageStatus, OutboundMessage
from models.people import DISTRICTS, Beneficiary, Sex, phone_holders
from models.requests import CallbackRequest
from models.spreadsheet import csv_writer
from models.staff import Role, StaffUser

# Age bands the donor reports by: (label, lowest age, highest age); None is open-ended. Registration accepts ages
# from 15, hence a band under 18.
AGE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("under 18", None, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55+", 55, None),
)
AGE_BAND_LABELS = tuple(label for label, _, _ in AGE_BANDS)
SEXES = tuple(Sex)

# District, sex and age band of an SMS or a call-back from a number that never registered.
NOT_REGISTERED = "not registered"

# Indexes for these queries (migration "report indexes"). Registrations by district and sex, and the scoped
# registrations chart, read only the first index (an index-only scan, no hashing of 100,000 rows); the chart of
# the last twelve months reads a range of the second.
Index("ix_beneficiaries_district_sex_created_at", Beneficiary.district, Beneficiary.sex, Beneficiary.created_at)
Index("ix_beneficiaries_created_at", Beneficiary.created_at)
# The beneficiary list filtered by registration dates (models/search.py) pages newest first along this index and
# stops at a page full; walking the id index instead would read every later registration first (at a million
# people, a month 90 days back lies 250,000 rows down: 120-240 ms a page).
Index("ix_beneficiaries_created_at_id", Beneficiary.created_at, Beneficiary.id)

# How many periods the dashboard's registrations chart shows.
DASHBOARD_PERIODS = 12
# The dashboard recounts its figures itself when the worker has not for this many times its refresh interval.
DASHBOARD_STALE_FACTOR = 3
# The default age past which `dashboard` recounts (three times DASHBOARD_REFRESH_SECONDS' default of a minute).
DASHBOARD_STALE_SECONDS = 180.0


class Period(StrEnum):
    WEEK = "week"  # weeks start on Monday (ISO 8601)
    MONTH = "month"


class ReportError(ValueError):
    """A report was asked for with filters that make no sense; the message says which."""


@dataclass(frozen=True)
class Filters:
    """What a report covers: Lesotho dates, both ends included (None: no limit), and districts (empty: all)."""

    start: date | None = None
    end: date | None = None
    districts: tuple[str, ...] = ()

    def __post_init__(self):
        if self.start and self.end and self.start > self.end:
            raise ReportError(f"the period starts ({self.start}) after it ends ({self.end})")
        unknown = [name for name in self.districts if name not in DISTRICTS]
        if unknown:
            raise ReportError(f"unknown districts: {', '.join(unknown)}")

    def describe(self) -> dict[str, Any]:
        """The filters as JSON-able details, for the audit entry of an export."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "districts": list(self.districts),
        }


def districts_for(user: StaffUser) -> tuple[str, ...]:
    """The districts whose figures `user` may see; empty means every district (admins, unlimited accounts)."""
    return () if user.role == Role.ADMIN else user.district_list


# --- SQL building blocks -------------------------------------------------------------------------------------------


def _in_period(column, filters: Filters) -> list[ColumnElement[bool]]:
    conditions = []
    if filters.start:
        conditions.append(column >= start_of_lesotho_day(filters.start))
    if filters.end:
        conditions.append(column < end_of_lesotho_day(filters.end))
    return conditions


def _in_districts(filters: Filters) -> list[ColumnElement[bool]]:
    return [Beneficiary.district.in_(filters.districts)] if filters.districts else []


def _age_band() -> ColumnElement[str]:
    """The age band at registration, as an SQL expression over `beneficiaries`."""
    age = extract("year", Beneficiary.created_at) - Beneficiary.year_of_birth
    # A message or call-back from a number that never registered has no beneficiary, hence no age.
    whens = [(Beneficiary.id.is_(None), NOT_REGISTERED)]
    whens += [(age <= high, label) for label, _, high in AGE_BANDS if high is not None]
    return case(*whens, else_=AGE_BANDS[-1][0])


def age_band_at_registration() -> ColumnElement[str]:
    """The donor's age band at registration, as an SQL expression over `beneficiaries`, for reports kept elsewhere
    (check-in answers): one definition of the bands and of the age they are taken at."""
    return _age_band()


# A Lesotho midnight: PostgreSQL cuts timestamps into days from it (date_bin is arithmetic, far cheaper per row
# than converting every timestamp to a time zone).
DAY_ORIGIN = datetime(2000, 1, 3, tzinfo=LESOTHO)


def _lesotho_day(column, dialect: str) -> ColumnElement:
    """The Lesotho day of a UTC timestamp column, as the database computes it (read it back with `_as_date`)."""
    if dialect == "postgresql":
        return func.date_bin(timedelta(days=1), column, DAY_ORIGIN)
    offset_minutes = int(DAY_ORIGIN.utcoffset().total_seconds() // 60)
    return func.date(column, f"{offset_minutes:+d} minutes")


def _as_date(value) -> date:
    """A day from `_lesotho_day`: a timestamp at a Lesotho midnight (PostgreSQL) or `YYYY-MM-DD` (SQLite)."""
    if isinstance(value, datetime):
        return lesotho_time(value).date()
    return value if isinstance(value, date) else date.fromisoformat(value)


Key = tuple[str, str, str]  # (district, sex, age band)


def _key(district, sex, band) -> Key:
    return (district or NOT_REGISTERED, sex or NOT_REGISTERED, band or NOT_REGISTERED)


def _key_order(key: Key) -> tuple:
    district, sex, band = key
    return (
        DISTRICTS.index(district) if district in DISTRICTS else len(DISTRICTS),
        SEXES.index(sex) if sex in SEXES else len(SEXES),
        AGE_BAND_LABELS.index(band) if band in AGE_BAND_LABELS else len(AGE_BAND_LABELS),
    )


def _breakdown_columns() -> list:
    return [Beneficiary.district, Beneficiary.sex, _age_band().label("age_band")]


# --- indicators by district, sex and age band ----------------------------------------------------------------------


def registrations_breakdown(session: Session, filters: Filters) -> dict[Key, int]:
    """Beneficiaries registered in the period, by district, sex and age band."""
    columns = _breakdown_columns()
    query = (
        select(*columns, func.count())
        .where(*_in_period(Beneficiary.created_at, filters), *_in_districts(filters))
        .group_by(*columns)
    )
    return {_key(d, s, b): n for d, s, b, n in session.execute(query)}


@dataclass
class GrantFigures:
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GrantStatus, 0))
    amount_paid: Decimal = Decimal("0.00")


def grants_breakdown(session: Session, filters: Filters) -> dict[Key, GrantFigures]:
    """Where the grants of the beneficiaries registered in the period stand, and how much has been paid."""
    columns = _breakdown_columns()
    query = (
        select(*columns, Grant.status, func.count(), func.sum(Grant.amount))
        .join(Grant, Grant.beneficiary_id == Beneficiary.id)
        .where(*_in_period(Beneficiary.created_at, filters), *_in_districts(filters))
        .group_by(*columns, Grant.status)
    )
    figures: dict[Key, GrantFigures] = defaultdict(GrantFigures)
    for district, sex, band, status, count, amount in session.execute(query):
        cell = figures[_key(district, sex, band)]
        cell.by_status[status] = cell.by_status.get(status, 0) + count
        if status == GrantStatus.PAID and amount is not None:
            cell.amount_paid += _money(amount)
    return dict(figures)


@dataclass
class SmsFigures:
    total: int = 0  # every message written, whatever became of it
    sent: int = 0  # handed to the provider and heard back (models.messages.SENT_GROUPS)
    delivered: int = 0
    failed: int = 0  # failed, rejected or expired

    @property
    def delivery_rate(self) -> float | None:
        """Delivered as a share of sent; None before anything was sent."""
        return self.delivered / self.sent if self.sent else None

    def count(self, status: str, messages: int) -> None:
        """Add `messages` messages that are in `status`."""
        group = MESSAGE_GROUPS[MessageStatus(status)]
        self.total += messages
        if group in SENT_GROUPS:
            self.sent += messages
        if group == MessageGroup.DELIVERED:
            self.delivered += messages
        if group == MessageGroup.FAILED:
            self.failed += messages

    def add(self, other: SmsFigures) -> None:
        self.total += other.total
        self.sent += other.sent
        self.delivered += other.delivered
        self.failed += other.failed


def sms_breakdown(session: Session, filters: Filters) -> dict[Key, SmsFigures]:
    """SMS written in the period, sent and delivered, by the recipient's district, sex and age band."""
    columns = _breakdown_columns()
    holders = phone_holders()
    query = (
        select(*columns, OutboundMessage.status, func.count())
        .select_from(OutboundMessage)
        .outerjoin(holders, holders.c.contact_id == OutboundMessage.contact_id)
        .outerjoin(Beneficiary, Beneficiary.id == holders.c.holder_id)
        .where(*_in_period(OutboundMessage.created_at, filters), *_in_districts(filters))
        .group_by(*columns, OutboundMessage.status)
    )
    figures: dict[Key, SmsFigures] = defaultdict(SmsFigures)
    for district, sex, band, status, count in session.execute(query):
        figures[_key(district, sex, band)].count(status, count)
    return dict(figures)


@dataclass
class CallbackFigures:
    requested: int = 0
    handled: int = 0

    @property
    def open(self) -> int:
        return self.requested - self.handled


def callbacks_breakdown(session: Session, filters: Filters) -> dict[Key, CallbackFigures]:
    """Call-back requests made in the period and how many of them staff have handled."""
    columns = _breakdown_columns()
    holders = phone_holders()
    query = (
        select(*columns, func.count(), func.count(CallbackRequest.handled_at))
        .select_from(CallbackRequest)
        .outerjoin(holders, holders.c.contact_id == CallbackRequest.contact_id)
        .outerjoin(Beneficiary, Beneficiary.id == holders.c.holder_id)
        .where(*_in_period(CallbackRequest.created_at, filters), *_in_districts(filters))
        .group_by(*columns)
    )
    return {_key(d, s, b): CallbackFigures(r, h) for d, s, b, r, h in session.execute(query)}


def _money(value) -> Decimal:
    """Sums come back as Decimal on PostgreSQL and as float on SQLite; both become maloti and lwei."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --- registrations over time ---------------------------------------------------------------------------------------


def period_start(day: date, period: Period) -> date:
    """The first day of the week (Monday) or month that `day` falls in."""
    return day - timedelta(days=day.weekday()) if period == Period.WEEK else day.replace(day=1)


def _next_period(start: date, period: Period) -> date:
    if period == Period.WEEK:
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_starts(last_day: date, period: Period, count: int) -> list[date]:
    """The first days of the `count` periods that end with the one holding `last_day`, oldest first."""
    starts = [period_start(last_day, period)]
    while len(starts) < count:
        starts.insert(0, period_start(starts[0] - timedelta(days=1), period))
    return starts


def registrations_over_time(
    session: Session, period: Period, first_day: date, last_day: date, districts: Sequence[str] = ()
) -> list[tuple[date, int]]:
    """Registrations per week or month from `first_day` to `last_day` (Lesotho days, both included), zeros kept.

    The database groups by day (at most a few hundred rows); the days are folded into periods here, which keeps the
    query the same on SQLite and PostgreSQL.
    """
    filters = Filters(first_day, last_day, tuple(districts))
    day = _lesotho_day(Beneficiary.created_at, session.get_bind().dialect.name).label("day")
    query = (
        select(day, func.count())
        .where(*_in_period(Beneficiary.created_at, filters), *_in_districts(filters))
        .group_by(day)
    )
    return _fold_into_periods(period, first_day, last_day, ((_as_date(v), n) for v, n in session.execute(query)))


def _fold_into_periods(
    period: Period, first_day: date, last_day: date, day_counts: Iterable[tuple[date, int]]
) -> list[tuple[date, int]]:
    """Counts per day folded into weeks or months from `first_day` to `last_day`, zeros kept, oldest first."""
    counts: dict[date, int] = {}
    start = period_start(first_day, period)
    while start <= last_day:
        counts[start] = 0
        start = _next_period(start, period)
    for day, count in day_counts:
        counts[period_start(day, period)] += count
    return list(counts.items())


# --- the dashboard -------------------------------------------------------------------------------------------------
#
# The dashboard reads counts kept in `dashboard_counts`, recounted in full at most once a minute, rather than
# grouping a million beneficiaries and millions of messages on every view (about 100 ms of database time at 100,000
# people, seconds at a million: the 300 ms goal would not hold). A refresh each minute was chosen over incremental
# counters because the figures change in many places: registrations (USSD and staff), grant moves (one by one and by
# payment import), erasures, campaign fan-out, the dispatcher and every delivery report. Counters kept in step by
# each of them would be one more write per message on the hottest rows of the database (a counter row per district
# and status, locked by every worker and delivery report), and a missed code path would drift for ever, where a
# recount heals itself within a minute. The price: figures up to a minute old (the page says as of when), and one
# recount a minute in the worker, grouped like the reports (1.3 s at 100,000 people and 4.5-8 s at a million on a
# busy 2-core machine; see docs/performance.md).
#
# The worker's sweep recounts when the counts are older than DASHBOARD_REFRESH_SECONDS; a dashboard that finds them
# older than DASHBOARD_STALE_SECONDS (no worker running: development, tests, an outage) recounts them itself. A
# recount claims the single `dashboard_refresh` row with a conditional UPDATE, so two workers, or a worker and a web
# request, never recount at once and never add their rows twice.


class DashboardFigure(StrEnum):
    REGISTRATIONS = "registrations"  # per district, sex and Lesotho day of registration
    GRANTS = "grants"  # per district and grant status, with the sum of amounts
    SMS = "sms"  # per recipient's district (None: a number that never registered) and message status
    CALLBACKS = "callbacks"  # per district (None: never registered), status "requested" or "handled"


CALLBACKS_REQUESTED, CALLBACKS_HANDLED = "requested", "handled"
# Sums of paid amounts over a whole programme need more digits than one grant's amount.
TOTAL_AMOUNT_DIGITS = 18
# The single row of `dashboard_refresh`, and its time before the first recount.
REFRESH_ROW_ID = 1
NEVER_REFRESHED = datetime(2000, 1, 1, tzinfo=UTC)
# Milliseconds one statement of a recount may run (a web request's statements get models.db.STATEMENT_TIMEOUT_MS).
RECOUNT_STATEMENT_TIMEOUT_MS = 120_000


class DashboardCount(Base):
    """One cell of the dashboard's figures as last recounted (`refresh_dashboard_counts`); no personal data."""

    __tablename__ = "dashboard_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    figure: Mapped[str] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(20))
    sex: Mapped[str | None] = mapped_column(String(8))
    day: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(TOTAL_AMOUNT_DIGITS, AMOUNT_PLACES))

    __table_args__ = (Index("ix_dashboard_counts_figure_district", "figure", "district"),)


class DashboardRefresh(Base):
    """When the dashboard's counts were last recounted: one row, also the lock that keeps recounts one at a time."""

    __tablename__ = "dashboard_refresh"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime)


def dashboard_counts_as_of(session: Session) -> datetime | None:
    """When the dashboard's counts were last recounted; None if never."""
    found = session.execute(
        select(DashboardRefresh.refreshed_at).where(DashboardRefresh.id == REFRESH_ROW_ID)
    ).scalar_one_or_none()
    return None if found is None or found <= NEVER_REFRESHED else found


def refresh_dashboard_counts(session: Session, *, max_age: float = 0, now: datetime | None = None) -> bool:
    """Recount every dashboard figure, unless the counts are younger than `max_age` seconds; True if it recounted.

    Runs in the caller's transaction: readers see the old counts until it commits, then the new ones, never a mix.
    The UPDATE of the refresh row is the lock: a second recounter waits for the first to commit, then finds the
    counts fresh and does nothing (with `max_age` 0 it recounts again, after the first).
    """
    now = now or utcnow()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # grouping millions of messages may take longer than a web request's statements
        session.execute(text(f"SET LOCAL statement_timeout = {RECOUNT_STATEMENT_TIMEOUT_MS}"))
    refresh = DashboardRefresh.__table__
    session.execute(
        insert_on_conflict(dialect, refresh)
        .values(id=REFRESH_ROW_ID, refreshed_at=NEVER_REFRESHED)
        .on_conflict_do_nothing(index_elements=[refresh.c.id])
    )
    claimed = session.execute(
        update(refresh)
        .where(refresh.c.id == REFRESH_ROW_ID, refresh.c.refreshed_at <= now - timedelta(seconds=max_age))
        .values(refreshed_at=now)
    )
    if claimed.rowcount == 0:
        return False
    session.execute(delete(DashboardCount.__table__))
    rows = _counted(session, dialect)
    if rows:
        session.execute(insert(DashboardCount.__table__), rows)
    return True


def _counted(session: Session, dialect: str) -> list[dict]:
    """Every cell of the dashboard's figures, counted from the tables themselves (a few thousand rows a year)."""
    rows: list[dict] = []

    def cell(figure, district=None, sex=None, day=None, status=None, count=0, amount=None) -> None:
        rows.append(
            {
                "figure": figure,
                "district": district,
                "sex": sex,
                "day": day,
                "status": status,
                "count": count,
                "amount": None if amount is None else _money(amount),
            }
        )

    day = _lesotho_day(Beneficiary.created_at, dialect).label("day")
    registrations = select(Beneficiary.district, Beneficiary.sex, day, func.count()).group_by(
        Beneficiary.district, Beneficiary.sex, day
    )
    for district, sex, value, count in session.execute(registrations):
        cell(DashboardFigure.REGISTRATIONS, district, sex, day=_as_date(value), count=count)
    grants = (
        select(Beneficiary.district, Grant.status, func.count(), func.sum(Grant.amount))
        .join(Beneficiary, Beneficiary.id == Grant.beneficiary_id)
        .group_by(Beneficiary.district, Grant.status)
    )
    for district, status, count, amount in session.execute(grants):
        cell(DashboardFigure.GRANTS, district, status=status, count=count, amount=amount)
    # SMS and call-backs are the phone's: on a household phone they count once, with its first registration.
    holders = phone_holders()
    sms = (
        select(Beneficiary.district, OutboundMessage.status, func.count())
        .select_from(OutboundMessage)
        .outerjoin(holders, holders.c.contact_id == OutboundMessage.contact_id)
        .outerjoin(Beneficiary, Beneficiary.id == holders.c.holder_id)
        .group_by(Beneficiary.district, OutboundMessage.status)
    )
    for district, status, count in session.execute(sms):
        cell(DashboardFigure.SMS, district, status=status, count=count)
    callbacks = (
        select(Beneficiary.district, func.count(), func.count(CallbackRequest.handled_at))
        .select_from(CallbackRequest)
        .outerjoin(holders, holders.c.contact_id == CallbackRequest.contact_id)
        .outerjoin(Beneficiary, Beneficiary.id == holders.c.holder_id)
        .group_by(Beneficiary.district)
    )
    for district, requested, handled in session.execute(callbacks):
        cell(DashboardFigure.CALLBACKS, district, status=CALLBACKS_REQUESTED, count=requested)
        cell(DashboardFigure.CALLBACKS, district, status=CALLBACKS_HANDLED, count=handled)
    return rows


@dataclass
class Dashboard:
    """The start page's headline figures and chart data, for the districts one staff member may see."""

    registrations: int
    by_district: dict[str, int]
    by_sex: dict[str, int]
    over_time: list[tuple[date, int]]
    period: Period
    funnel: dict[str, int]  # GrantStatus order is the lifecycle order
    amount_paid: Decimal
    sms: SmsFigures
    callbacks: CallbackFigures
    districts: tuple[str, ...]
    as_of: datetime | None = field(default=None, compare=False)  # when counted: not a figure


def dashboard(
    session: Session,
    districts: Sequence[str] = (),
    *,
    today: date | None = None,
    period: Period = Period.MONTH,
    max_age: float = DASHBOARD_STALE_SECONDS,
) -> Dashboard:
    """Everything the dashboard shows, read from the kept counts (five grouped reads of a small table); recounted
    first when they are older than `max_age` seconds (0: always)."""
    today = today or lesotho_today()
    filters = Filters(districts=tuple(districts))
    as_of = dashboard_counts_as_of(session)
    if as_of is None or as_of <= utcnow() - timedelta(seconds=max_age):
        refresh_dashboard_counts(session, max_age=max_age)
        as_of = dashboard_counts_as_of(session)
    scope = [DashboardCount.district.in_(filters.districts)] if filters.districts else []

    def cells(figure: DashboardFigure, *columns, where=()):
        query = select(*columns).where(DashboardCount.figure == figure, *scope, *where).group_by(*columns[:-1])
        return session.execute(query)

    total = cast(func.sum(DashboardCount.count), BigInteger)  # PostgreSQL sums bigints as numeric
    by_district = dict.fromkeys(filters.districts or DISTRICTS, 0)
    by_sex = dict.fromkeys(SEXES, 0)
    for district, sex, count in cells(
        DashboardFigure.REGISTRATIONS, DashboardCount.district, DashboardCount.sex, total
    ):
        by_district[district] = by_district.get(district, 0) + count
        by_sex[sex] = by_sex.get(sex, 0) + count
    first_day = period_starts(today, period, DASHBOARD_PERIODS)[0]
    days = cells(
        DashboardFigure.REGISTRATIONS,
        DashboardCount.day,
        total,
        where=(DashboardCount.day >= first_day, DashboardCount.day <= today),
    )
    over_time = _fold_into_periods(period, first_day, today, ((_as_date(day), count) for day, count in days))

    funnel = dict.fromkeys(GrantStatus, 0)
    amount_paid = Decimal("0.00")
    query = (
        select(DashboardCount.status, total, func.sum(DashboardCount.amount))
        .where(DashboardCount.figure == DashboardFigure.GRANTS, *scope)
        .group_by(DashboardCount.status)
    )
    for status, count, amount in session.execute(query):
        funnel[status] = count
        if status == GrantStatus.PAID and amount is not None:
            amount_paid = _money(amount)

    sms = SmsFigures()
    for status, count in cells(DashboardFigure.SMS, DashboardCount.status, total):
        sms.count(status, count)
    callbacks = dict(cells(DashboardFigure.CALLBACKS, DashboardCount.status, total).all())
    return Dashboard(
        registrations=sum(by_district.values()),
        by_district=by_district,
        by_sex=by_sex,
        over_time=over_time,
        period=period,
        funnel=funnel,
        amount_paid=amount_paid,
        sms=sms,
        callbacks=CallbackFigures(callbacks.get(CALLBACKS_REQUESTED, 0), callbacks.get(CALLBACKS_HANDLED, 0)),
        districts=filters.districts,
        as_of=as_of,
    )


# --- report tables -------------------------------------------------------------------------------------------------


@dataclass
class ReportTable:
    """One downloadable table: a header row, data rows and a totals row. Cells are str, int or Decimal (maloti)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    totals: list[Any]


BREAKDOWN_COLUMNS = ["District", "Sex", "Age band"]
RATE_DECIMALS = 1


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.{RATE_DECIMALS}f}%" if whole else "-"


def _registrations_table(session: Session, filters: Filters) -> ReportTable:
    figures = registrations_breakdown(session, filters)
    rows = [[*key, figures[key]] for key in sorted(figures, key=_key_order)]
    return ReportTable(
        "registrations",
        "Registrations by district, sex and age band",
        [*BREAKDOWN_COLUMNS, "Registrations"],
        rows,
        ["Total", "", "", sum(figures.values())],
    )


def _registrations_by_month_table(session: Session, filters: Filters) -> ReportTable:
    day = _lesotho_day(Beneficiary.created_at, session.get_bind().dialect.name).label("day")
    query = (
        select(day, Beneficiary.sex, func.count())
        .where(*_in_period(Beneficiary.created_at, filters), *_in_districts(filters))
        .group_by(day, Beneficiary.sex)
    )
    months: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEXES, 0))
    for value, sex, count in session.execute(query):
        month = months[period_start(_as_date(value), Period.MONTH)]
        month[sex] = month.get(sex, 0) + count
    rows = [[f"{m:%Y-%m}", *(months[m][s] for s in SEXES), sum(months[m].values())] for m in sorted(months)]
    totals = ["Total", *(sum(month[s] for month in months.values()) for s in SEXES)]
    return ReportTable(
        "registrations-by-month",
        "Registrations by month and sex",
        ["Month", *(s.value.capitalize() for s in SEXES), "Total"],
        rows,
        [*totals, sum(totals[1:])],
    )


def _grants_table(session: Session, filters: Filters) -> ReportTable:
    figures = grants_breakdown(session, filters)
    rows, totals = [], GrantFigures()
    for key in sorted(figures, key=_key_order):
        cell = figures[key]
        rows.append([*key, *(cell.by_status[s] for s in GrantStatus), cell.amount_paid])
        for status in GrantStatus:
            totals.by_status[status] += cell.by_status[status]
        totals.amount_paid += cell.amount_paid
    return ReportTable(
        "grants",
        "Grants by status and amounts paid (beneficiaries registered in the period)",
        [*BREAKDOWN_COLUMNS, *(status_label(s) for s in GrantStatus), "Amount paid (LSL)"],
        rows,
        ["Total", "", "", *(totals.by_status[s] for s in GrantStatus), totals.amount_paid],
    )


def _sms_table(session: Session, filters: Filters) -> ReportTable:
    figures = sms_breakdown(session, filters)
    rows, totals = [], SmsFigures()
    for key in sorted(figures, key=_key_order):
        cell = figures[key]
        rows.append([*key, cell.sent, cell.delivered, cell.failed, _percent(cell.delivered, cell.sent)])
        totals.add(cell)
    return ReportTable(
        "sms",
        "SMS sent and delivered (messages written in the period)",
        [*BREAKDOWN_COLUMNS, "Sent", "Delivered", "Failed", "Delivery rate"],
        rows,
        ["Total", "", "", totals.sent, totals.delivered, totals.failed, _percent(totals.delivered, totals.sent)],
    )


def _callbacks_table(session: Session, filters: Filters) -> ReportTable:
    figures = callbacks_breakdown(session, filters)
    rows, requested, handled = [], 0, 0
    for key in sorted(figures, key=_key_order):
        cell = figures[key]
        rows.append([*key, cell.requested, cell.handled, cell.open])
        requested, handled = requested + cell.requested, handled + cell.handled
    return ReportTable(
        "callbacks",
        "Call-back requests and how many were handled (requests made in the period)",
        [*BREAKDOWN_COLUMNS, "Requested", "Handled", "Open"],
        rows,
        ["Total", "", "", requested, handled, requested - handled],
    )


# The report tables, in the order the reports page shows them; the keys are part of the CSV download URLs.
REPORTS = {
    "registrations": _registrations_table,
    "registrations-by-month": _registrations_by_month_table,
    "grants": _grants_table,
    "sms": _sms_table,
    "callbacks": _callbacks_table,
}


def report_table(session: Session, name: str, filters: Filters) -> ReportTable:
    """One report table by its name in REPORTS; ReportError for an unknown name."""
    build = REPORTS.get(name)
    if build is None:
        raise ReportError(f"unknown report {name!r}; the reports are {', '.join(REPORTS)}")
    return build(session, filters)


def status_label(status: str) -> str:
    """`payment_scheduled` -> `Payment scheduled`."""
    return status.replace("_", " ").capitalize()


def to_csv(table: ReportTable) -> str:
    """The table as CSV (comma-separated, header first, totals last); amounts as plain numbers, e.g. 1500.00."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    writer.writerow(table.totals)
    return out.getvalue()


__all__ = [
    "AGE_BANDS",
    "REPORTS",
    "Dashboard",
    "Filters",
    "Period",
    "ReportError",
    "ReportTable",
    "dashboard",
    "districts_for",
    "report_table",
    "to_csv",
]
