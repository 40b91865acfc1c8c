"""The programme's reports: indicators by district, sex and age band on screen, and each table as a CSV download.

The figures are aggregates, not personal data, but they leave the system for the donor and the Government, so every
download is written to the audit log (`export.report`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Blueprint, Response, abort, render_template, request

from gateway.auth import client_ip, current_staff, login_required
from gateway.services import get_services
from models.audit import record
from models.grants import format_maloti
from models.people import DISTRICTS
from models.reports import REPORTS, Filters, ReportError, districts_for, report_table, to_csv

CSV_MIMETYPE = "text/csv; charset=utf-8"


class FilterError(ValueError):
    """The report form was filled in wrongly; the message is for the staff member."""


def _date(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _filters() -> Filters:
    """The period and districts asked for, within the districts this staff member may see (403 beyond them)."""
    allowed = districts_for(current_staff())
    chosen = tuple(name for name in request.args.getlist("district") if name)
    if allowed and any(name not in allowed for name in chosen):
        abort(403, description="You can only report on your own districts.")
    try:
        return Filters(_date("start"), _date("end"), chosen or allowed)
    except ReportError as exc:
        raise FilterError(str(exc)) from None


def _cell(value) -> str:
    """Numbers as the screen shows them: thousands separated, amounts in maloti."""
    if isinstance(value, Decimal):
        return format_maloti(value)
    if isinstance(value, int):
        return f"{value:,}"
    return value


bp = Blueprint("reports", __name__)


@bp.get("/reports")
@login_required
def reports():
    """Every report table for the chosen period and districts, with a CSV link for each."""
    allowed = districts_for(current_staff()) or DISTRICTS
    try:
        filters = _filters()
    except FilterError as exc:
        return render_template("reports/index.html", error=str(exc), tables=[], allowed=allowed, args=request.args), 400
    with get_services().db.session() as session:
        tables = [report_table(session, name, filters) for name in REPORTS]
    return render_template(
        "reports/index.html",
        tables=tables,
        filters=filters,
        allowed=allowed,
        args=request.args,
        query=request.query_string.decode("ascii", "replace"),
        cell=_cell,
    )


@bp.get("/reports/<name>.csv")
@login_required
def report_csv(name: str):
    """One report table as CSV, for the same filters as the page; the download is audited."""
    if name not in REPORTS:
        abort(404)
    try:
        filters = _filters()
    except FilterError as exc:
        abort(400, description=str(exc))
    staff = current_staff()
    with get_services().db.session() as session:
        table = report_table(session, name, filters)
        record(session, staff.email, "export.report", "report", name, ip=client_ip(), **filters.describe())
    period = "_".join(str(d) for d in (filters.start, filters.end) if d) or "all"
    return Response(
        to_csv(table),
        mimetype=CSV_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}_{period}.csv"'},
    )
