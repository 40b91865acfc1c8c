"""The start page: the programme's headline figures and charts, for the districts the staff member may see."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from gateway.auth import current_staff, login_required
from gateway.console.charts import bar_chart, column_chart
from gateway.services import get_services
from models.clock import lesotho_time
from models.grants import format_maloti
from models.reports import DASHBOARD_STALE_FACTOR, Period, districts_for, status_label
from models.reports import dashboard as dashboard_figures

# Chart labels for the periods: "Nov 2026" for months, "23 Nov" for weeks (the Monday they start on).
PERIOD_LABELS = {Period.MONTH: "%b %Y", Period.WEEK: "%d %b"}
# When the figures were counted, in Lesotho time.
AS_OF_FORMAT = "%d %b %Y %H:%M"


bp = Blueprint("dashboard", __name__)


@bp.get("/")
@login_required
def dashboard():
    """Registrations over time, by district and sex, the grant funnel and SMS delivery; `?period=week|month`.

    The figures are the counts the worker recounts each minute (models/reports.py), shown with their time."""
    try:
        period = Period(request.args.get("period", Period.MONTH))
    except ValueError:
        period = Period.MONTH
    services = get_services()
    stale = DASHBOARD_STALE_FACTOR * services.settings.dashboard_refresh_seconds  # no worker has recounted
    with services.db.session() as session:
        figures = dashboard_figures(session, districts_for(current_staff()), period=period, max_age=stale)
    label_format = PERIOD_LABELS[period]
    over_time = [(start.strftime(label_format), count) for start, count in figures.over_time]
    funnel = [(status_label(status), count) for status, count in figures.funnel.items()]
    sms = figures.sms
    sms_items = [("Sent", sms.sent), ("Delivered", sms.delivered), ("Failed", sms.failed)]
    charts = {
        "over_time": column_chart(f"Registrations per {period}", over_time),
        "district": bar_chart("Registrations by district", list(figures.by_district.items())),
        "sex": bar_chart("Registrations by sex", [(sex.capitalize(), n) for sex, n in figures.by_sex.items()]),
        "funnel": bar_chart("Grants by status", funnel),
        "sms": bar_chart("SMS sent, delivered and failed", sms_items),
    }
    return render_template(
        "dashboard.html",
        figures=figures,
        charts=charts,
        over_time=over_time,
        funnel=funnel,
        sms_items=sms_items,
        amount_paid=format_maloti(figures.amount_paid),
        as_of=lesotho_time(figures.as_of).strftime(AS_OF_FORMAT) if figures.as_of else None,
        periods=list(Period),
    )
