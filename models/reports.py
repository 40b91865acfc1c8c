"""The figures the programme owes its donor and the Government.

Every indicator is one GROUP BY query over the whole table, whatever the number of beneficiaries, so that the
dashboard and the reports stay fast at 100,000 rows and more; the folding into tables and charts happens here, in
Python, over at most a few hundred grouped rows. Nothing here returns personal data: only counts and sums.

Ages are ages at registration (year of registration minus year of birth), so that a report for a past period
gives the same figures whenever it is run. Days, weeks and months are Lesotho days (Africa/Maseru, UTC+2).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Index, Select, case, extract, func, select
from sqlalchemy.orm import Session

from models.clock import LESOTHO, end_of_lesotho_day, lesotho_time, lesotho_today, start_of_lesotho_day
from models.grants import Grant, GrantStatus
from models.messages import MESSAGE_GROUPS, SENT_GROUPS, MessageGroup, MessageStatus, OutboundMessage
from models.people import DISTRICTS, Beneficiary, Sex, phone_holder
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

# How many periods the dashboard's registrations chart shows.
DASHBOARD_PERIODS = 12


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
    query = (
        select(*columns, OutboundMessage.status, func.count())
        .select_from(OutboundMessage)
        .outerjoin(Beneficiary, phone_holder(OutboundMessage.contact_id))
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
    query = (
        select(*columns, func.count(), func.count(CallbackRequest.handled_at))
        .select_from(CallbackRequest)
        .outerjoin(Beneficiary, phone_holder(CallbackRequest.contact_id))
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
    counts: dict[date, int] = {}
    start = period_start(first_day, period)
    while start <= last_day:
        counts[start] = 0
        start = _next_period(start, period)
    for value, count in session.execute(query):
        counts[period_start(_as_date(value), period)] += count
    return list(counts.items())


# --- the dashboard -------------------------------------------------------------------------------------------------


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


def dashboard(
    session: Session, districts: Sequence[str] = (), *, today: date | None = None, period: Period = Period.MONTH
) -> Dashboard:
    """Everything the dashboard shows, in five grouped queries."""
    today = today or lesotho_today()
    filters = Filters(districts=tuple(districts))
    by_district = dict.fromkeys(filters.districts or DISTRICTS, 0)
    by_sex = dict.fromkeys(SEXES, 0)
    query = (
        select(Beneficiary.district, Beneficiary.sex, func.count())
        .where(*_in_districts(filters))
        .group_by(Beneficiary.district, Beneficiary.sex)
    )
    for district, sex, count in session.execute(query):
        by_district[district] = by_district.get(district, 0) + count
        by_sex[sex] = by_sex.get(sex, 0) + count
    first_day = period_starts(today, period, DASHBOARD_PERIODS)[0]
    over_time = registrations_over_time(session, period, first_day, today, filters.districts)

    funnel = dict.fromkeys(GrantStatus, 0)
    amount_paid = Decimal("0.00")
    query = select(Grant.status, func.count(), func.sum(Grant.amount)).group_by(Grant.status)
    if filters.districts:
        query = query.join(Beneficiary, Beneficiary.id == Grant.beneficiary_id).where(*_in_districts(filters))
    for status, count, amount in session.execute(query):
        funnel[status] = count
        if status == GrantStatus.PAID and amount is not None:
            amount_paid = _money(amount)

    sms = SmsFigures()
    query = _scoped(select(OutboundMessage.status, func.count()), OutboundMessage, filters)
    for status, count in session.execute(query.group_by(OutboundMessage.status)):
        sms.count(status, count)
    requested, handled = session.execute(
        _scoped(select(func.count(), func.count(CallbackRequest.handled_at)), CallbackRequest, filters)
    ).one()
    return Dashboard(
        registrations=sum(by_district.values()),
        by_district=by_district,
        by_sex=by_sex,
        over_time=over_time,
        period=period,
        funnel=funnel,
        amount_paid=amount_paid,
        sms=sms,
        callbacks=CallbackFigures(requested, handled),
        districts=filters.districts,
    )


def _scoped(query: Select, table, filters: Filters) -> Select:
    """`query` over `table`, limited to the people of `filters.districts` when there are any (a join only then)."""
    query = query.select_from(table)
    if not filters.districts:
        return query
    return query.join(Beneficiary, phone_holder(table.contact_id)).where(*_in_districts(filters))


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
