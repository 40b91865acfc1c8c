"""`flask --app wsgi campaigns …`: bulk SMS and the COVID-19 series for operators, in a terminal."""

from __future__ import annotations

import getpass
import sys
import time
from datetime import datetime

import click
from flask.cli import AppGroup

from gateway.services import get_services
from models.campaigns import Audience, Campaign, CampaignStatus
from models.clock import LESOTHO, lesotho_time
from models.messages import MessagePriority
from notifications.campaigns.fanout import enqueue_fanout
from notifications.campaigns.lifecycle import (
    CampaignError,
    campaign_progress,
    create_campaign,
    move_campaign,
    preview_campaign,
    send_campaign,
)
from notifications.campaigns.series import start_series, stop_series
from notifications.sms.queues import kick

campaigns_group = AppGroup("campaigns", help="Bulk SMS campaigns and the COVID-19 series.")
series_group = AppGroup("series", help="The recurring COVID-19 safety series.")
campaigns_group.add_command(series_group)

# Seconds between two redraws of `campaigns status` in a terminal.
PROGRESS_REFRESH_SECONDS = 1.0
PROGRESS_BAR_WIDTH = 30


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _lesotho_datetime(text: str) -> datetime:
    """ISO time; without an offset it is Lesotho time (what an officer means by "09:00")."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO time such as 2026-12-01T09:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LESOTHO)


def _age_band(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    low, _, high = text.partition("-")
    try:
        return (int(low) if low else None), (int(high) if high else None)
    except ValueError:
        raise click.BadParameter(f"{text!r}: write an age band as 18-35, 36- or -60") from None


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
@click.option("--registered-from", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--registered-to", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--send-at", help="When to send (ISO time, Lesotho time unless it has an offset); default: on send.")
def campaigns_create(
    name, text_en, text_st, districts, grant_status, language, sex, age, registered_from, registered_to, send_at
) -> None:
    """Create a draft campaign; prints its id."""
    age_min, age_max = _age_band(age)
    audience = Audience(
        districts=_split(districts),
        grant_statuses=_split(grant_status),
        languages=[language] if language else [],
        sexes=[sex] if sex else [],
        age_min=age_min,
        age_max=age_max,
        registered_from=registered_from.date() if registered_from else None,
        registered_to=registered_to.date() if registered_to else None,
    )
    try:
        with get_services().db.session() as session:
            campaign = create_campaign(
                session,
                name=name,
                text_en=text_en,
                text_st=text_st,
                audience=audience,
                created_by=_actor(),
                send_at=_lesotho_datetime(send_at) if send_at else None,
            )
            campaign_id = campaign.id
    except CampaignError as exc:
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


def _steer(campaign_id: int, action) -> str:
    services = get_services()
    try:
        with services.db.session() as session:
            campaign = _campaign(session, campaign_id)
            result = action(session, campaign)
            status = campaign.status
    except CampaignError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    if status == CampaignStatus.SENDING:
        enqueue_fanout(services.redis, campaign_id)
        kick(services.redis, MessagePriority.BULK)
    return result or status


@campaigns_group.command("send")
@click.argument("campaign_id", type=int)
def campaigns_send(campaign_id: int) -> None:
    """Send now, or at the campaign's --send-at time; prints the new status."""
    click.echo(_steer(campaign_id, lambda session, campaign: send_campaign(session, campaign)))


@campaigns_group.command("pause")
@click.argument("campaign_id", type=int)
def campaigns_pause(campaign_id: int) -> None:
    """Hold the campaign's unsent messages (takes effect with the next batch)."""
    click.echo(_steer(campaign_id, lambda s, c: move_campaign(s, c, CampaignStatus.PAUSED)))


@campaigns_group.command("resume")
@click.argument("campaign_id", type=int)
def campaigns_resume(campaign_id: int) -> None:
    """Send a paused campaign's remaining messages."""
    click.echo(_steer(campaign_id, lambda s, c: move_campaign(s, c, CampaignStatus.SENDING)))


@campaigns_group.command("cancel")
@click.argument("campaign_id", type=int)
def campaigns_cancel(campaign_id: int) -> None:
    """Withdraw every message that has not left yet; what left already stays counted."""
    click.echo(_steer(campaign_id, lambda s, c: move_campaign(s, c, CampaignStatus.CANCELLED)))


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


@series_group.command("start")
@click.option("--every-days", type=int, default=7, show_default=True)
@click.option("--first-run", help="ISO time of the first message (Lesotho time); default: now.")
def series_start(every_days: int, first_run: str | None) -> None:
    """Start the COVID-19 series (or change its timing)."""
    first = _lesotho_datetime(first_run) if first_run else datetime.now(LESOTHO)
    with get_services().db.session() as session:
        series = start_series(session, interval_days=every_days, first_run_at=first, created_by=_actor())
        click.echo(f"COVID-19 series: every {series.interval_days} days, next {lesotho_time(first):%Y-%m-%d %H:%M}")


@series_group.command("stop")
def series_stop() -> None:
    """Stop the COVID-19 series; a running message campaign can still be paused or cancelled on its own."""
    with get_services().db.session() as session:
        click.echo("stopped" if stop_series(session) else "the series was not running")
