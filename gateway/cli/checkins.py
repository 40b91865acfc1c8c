"""`flask --app wsgi checkins …`: follow-up check-ins for operators, in a terminal.

A check-in is defined from a JSON file with the API's fields (`POST /api/v1/checkins`), so the console, the API
and the CLI read one definition in one way.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from gateway.cli.operator import as_option, cli_actor
from gateway.services import get_services
from models.actors import PermissionDeniedError
from notifications.checkins.definitions import (
    CheckinError,
    close_checkin,
    create_checkin,
    effective_status,
    find_checkin,
    invitation_counts,
    send_checkin,
    start_invitations,
    visible_checkins,
)
from notifications.checkins.report import answer_counts, answers_csv

checkins_group = AppGroup("checkins", help="Follow-up check-ins: define, send, close, read the answers.")


@checkins_group.command("create")
@click.argument("definition", type=click.File("r", encoding="utf-8"))
@as_option
def checkins_create(as_email, definition) -> None:
    """Define a draft check-in from a JSON file (the API's fields); prints its id."""
    try:
        values = json.load(definition)
    except ValueError as exc:
        raise click.ClickException(f"the file is not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise click.ClickException("the file must hold one JSON object")
    services = get_services()
    try:
        with services.db.session() as session:
            checkin = create_checkin(session, cli_actor(session, as_email), values, services.settings)
            checkin_id = checkin.id
    except (CheckinError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(checkin_id)


@checkins_group.command("list")
@as_option
def checkins_list(as_email) -> None:
    """Check-ins, newest first: id, status, people answered / asked, title."""
    with get_services().db.session() as session:
        for checkin in visible_checkins(session, cli_actor(session, as_email)):
            counts = invitation_counts(session, checkin)
            status = effective_status(checkin)
            click.echo(f"{checkin.id}\t{status}\t{counts['answered']}/{sum(counts.values())}\t{checkin.title_en}")


@checkins_group.command("send")
@click.argument("checkin_id", type=int)
@as_option
def checkins_send(as_email, checkin_id) -> None:
    """Invite the audience and send the invitation SMS; prints how many people it asked."""
    services = get_services()
    try:
        with services.db.session() as session:
            actor = cli_actor(session, as_email)
            checkin = find_checkin(session, actor, checkin_id)
            campaign = send_checkin(session, actor, checkin)
            asked = invitation_counts(session, checkin)["invited"]
    except (CheckinError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    start_invitations(services.redis, checkin, campaign)
    click.echo(f"people asked: {asked}; invitation campaign {campaign.id} is {campaign.status}")


@checkins_group.command("close")
@click.argument("checkin_id", type=int)
@as_option
def checkins_close(as_email, checkin_id) -> None:
    """Stop taking answers now; the answers stay."""
    try:
        with get_services().db.session() as session:
            actor = cli_actor(session, as_email)
            close_checkin(session, actor, find_checkin(session, actor, checkin_id))
    except (CheckinError, PermissionDeniedError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("closed")


@checkins_group.command("answers")
@click.argument("checkin_id", type=int)
@as_option
def checkins_answers(as_email, checkin_id) -> None:
    """The answers counted by question, district, sex and age band, as CSV on standard output."""
    try:
        with get_services().db.session() as session:
            actor = cli_actor(session, as_email)
            checkin = find_checkin(session, actor, checkin_id)
            click.echo(answers_csv(answer_counts(session, checkin, actor.district_list)), nl=False)
    except CheckinError as exc:
        raise click.ClickException(str(exc)) from None
