"""`flask --app wsgi campaigns …`: bulk SMS and the COVID-19 series for operators, in a terminal."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import click
from flask.cli import AppGroup

from gateway.cli.operator import as_option, cli_actor
from gateway.services import get_services
from models.actors import PermissionDeniedError
from models.campaigns import Campaign, CampaignStatus
from models.clock import from_lesotho, lesotho_time, utcnow
from notifications.campaigns.actions import CampaignAction, create_campaign_for, start_sending, steer_campaign
from notifications.campaigns.lifecycle import CampaignError, campaign_progress, preview_campaign
from notifications.campaigns.series import start_series, stop_series

campaigns_group = AppGroup("campaigns", help="Bulk SMS campaigns and the COVID-19 series.")
series_group = AppGroup("series", help="The recurring COVID-19 safety series.")
campaigns_group.add_command(series_group)

# Seconds between two redraws of `campaigns status` in a terminal.
PROGRESS_REFRESH_SECONDS = 1.0
PROGRESS_BAR_WIDTH = 30


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _age_band(text: str | None) -> tuple[str, str]:
    """`18-35`, `36-` or `-60` as the two ends the compose form has; the form's reader checks the numbers."""
    low, _, high = (text or "").partition("-")
    return low.strip(), high.strip()


def _campaign(session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    return campaign


@campaigns_group.command("create")
@click.option("--name", required=True)
@click.option("--text-en", required=True, help="English text; placeholders {first_name}, {reference}, {district}.")
@click.option("--text-st", required=True, help="Sesotho text, same placeholders.")
@click.option("--districts", help="Comma-separated, e.g. Maseru,Leribe.")
@click.option("--grant-status", help="Comma-separated grant statuses, e.g. approved,paid.")
@click.option("--language", type=click.Choice(["en", "st"]), help="Only numbers that chose this language.")
@click.option("--sex", type=click.Choice(["female", "male"]))
@click.option("--age", help="Age band, e.g. 18-35.")
@click.option("--registered-from", help="First registration date (YYYY-MM-DD), a Lesotho day.")
@click.option("--registered-to", help="Last registration date, included (YYYY-MM-DD), a Lesotho day.")
@click.option("--send-at", help="When to send (ISO time, Lesotho time unless it has an offset); default: on send.")
@as_option
def campaigns_create(as_email, age, districts, grant_status, language, sex, **fields) -> None:
    """Create a draft campaign; prints its id."""
    age_min, age_max = _age_band(age)
    # The compose form's field names (`fields` holds name, texts, registration dates and send time as typed): the
    # console, the API and the CLI read a campaign in one way.
    values = {
        **fields,
        "districts": _split(districts),
        "grant_statuses": _split(grant_status),
        "languages": [language] if language else [],
        "sexes": [sex] if sex else [],
        "age_min": age_min,
        "age_max": age_max,
    }
    try:
        with get_services().db.session() as session:
            campaign = create_campaign_for(session, cli_actor(session, as_email), values)
            campaign_id = campaign.id
    except (CampaignError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(campaign_id)


@campaigns_group.command("preview")
@click.argument("campaign_id", type=int)
def campaigns_preview(campaign_id: int) -> None:
    """Recipients per language, SMS parts, estimated cost and sample texts, before anything is sent."""
    services = get_services()
    with services.db.session() as session:
        campaign = _campaign(session, campaign_id)
        preview = preview_campaign(session, campaign, services.settings)
    click.echo(f"campaign {campaign_id}: {campaign.name} [{campaign.status}]")
    for language, count in preview.recipients.items():
        click.echo(f"  {language}: {count:>7} recipients x {preview.parts[language]} part(s)")
    click.echo(f"  total: {preview.total} recipients; {preview.excluded_opted_out} left out (sent STOP)")
    click.echo(f"  estimated cost: M{preview.cost:,.2f} at M{services.settings.sms_price_per_part:.2f} a part")
    for language, chars in preview.non_gsm.items():
        click.echo(
            f"  WARNING: the {language} text has characters outside GSM-7 ({''.join(chars)}): each part "
            "then holds 70 characters, not 160"
        )
    for language, phone, text in preview.samples:
        click.echo(f"  sample [{language}] {phone}: {text}")


def _steer(campaign_id: int, action: CampaignAction, as_email: str | None) -> None:
    """One command through `steer_campaign`; prints the new status, or the reason and exit status 1."""
    services = get_services()
    try:
        with services.db.session() as session:
            campaign = _campaign(session, campaign_id)
            status = steer_campaign(session, cli_actor(session, as_email), campaign, action)
    except (CampaignError, PermissionDeniedError) as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    start_sending(services.redis, campaign_id, status)
    click.echo(status)


@campaigns_group.command("send")
@click.argument("campaign_id", type=int)
@as_option
def campaigns_send(campaign_id: int, as_email: str | None) -> None:
    """Send a draft now, or at its --send-at time; prints the new status."""
    _steer(campaign_id, CampaignAction.SEND, as_email)


@campaigns_group.command("pause")
@click.argument("campaign_id", type=int)
@as_option
def campaigns_pause(campaign_id: int, as_email: str | None) -> None:
    """Hold the campaign's unsent messages (takes effect with the next batch)."""
    _steer(campaign_id, CampaignAction.PAUSE, as_email)


@campaigns_group.command("resume")
@click.argument("campaign_id", type=int)
@as_option
def campaigns_resume(campaign_id: int, as_email: str | None) -> None:
    """Send a paused campaign's remaining messages."""
    _steer(campaign_id, CampaignAction.RESUME, as_email)


@campaigns_group.command("cancel")
@click.argument("campaign_id", type=int)
@as_option
def campaigns_cancel(campaign_id: int, as_email: str | None) -> None:
    """Withdraw every message that has not left yet; what left already stays counted."""
    _steer(campaign_id, CampaignAction.CANCEL, as_email)


def _progress_line(campaign_id: int) -> tuple[str, bool]:
    with get_services().db.session() as session:
        campaign = _campaign(session, campaign_id)
        progress = campaign_progress(session, campaign)
    total = max(progress.recipients, 1)
    filled = int(PROGRESS_BAR_WIDTH * progress.done / total)
    bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
    line = (
        f"[{bar}] {progress.done}/{progress.recipients} {progress.status}"
        f"{'' if progress.fanout_done else ' (still adding recipients)'}: waiting {progress.waiting}, "
        f"submitted {progress.submitted}, delivered {progress.delivered}, failed {progress.failed}, "
        f"cancelled {progress.cancelled}; left out (STOP) {progress.excluded_opted_out}"
    )
    finished = progress.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.DRAFT)
    return line, finished


@campaigns_group.command("status")
@click.argument("campaign_id", type=int)
def campaigns_status(campaign_id: int) -> None:
    """Counters of one campaign; in a terminal, a live progress bar until it finishes (Ctrl-C leaves)."""
    line, finished = _progress_line(campaign_id)
    if not sys.stdout.isatty():
        click.echo(line)
        return
    try:
        while True:
            click.echo(f"\r\x1b[K{line}", nl=False)
            if finished:
                break
            time.sleep(PROGRESS_REFRESH_SECONDS)
            line, finished = _progress_line(campaign_id)
    except KeyboardInterrupt:
        pass
    click.echo()


def _lesotho_datetime(text: str) -> datetime:
    """ISO time; without an offset it is Lesotho time (what an officer means by "09:00")."""
    try:
        return from_lesotho(datetime.fromisoformat(text))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO time such as 2026-12-01T09:00") from None


@series_group.command("start")
@click.option("--every-days", type=int, default=7, show_default=True)
@click.option("--first-run", help="ISO time of the first message (Lesotho time); default: now.")
@as_option
def series_start(every_days: int, first_run: str | None, as_email: str | None) -> None:
    """Start the COVID-19 series (or change its timing)."""
    first = _lesotho_datetime(first_run) if first_run else utcnow()
    try:
        with get_services().db.session() as session:
            series = start_series(session, cli_actor(session, as_email), interval_days=every_days, first_run_at=first)
            interval = series.interval_days
    except (ValueError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"COVID-19 series: every {interval} days, next {lesotho_time(first):%Y-%m-%d %H:%M}")


@series_group.command("stop")
@as_option
def series_stop(as_email: str | None) -> None:
    """Stop the COVID-19 series; a running message campaign can still be paused or cancelled on its own."""
    try:
        with get_services().db.session() as session:
            stopped = stop_series(session, cli_actor(session, as_email))
    except PermissionDeniedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("stopped" if stopped else "the series was not running")
