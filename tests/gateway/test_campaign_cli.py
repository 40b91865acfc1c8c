"""`flask --app wsgi campaigns …` and `seed-demo`, through the CLI runner on the real database and Redis."""

from __future__ import annotations

import getpass
from datetime import timedelta

from sqlalchemy import func, select

from models.audit import AuditLog
from models.campaigns import Campaign, CampaignStatus, CovidSeries
from models.clock import lesotho_time, utcnow
from models.grants import Grant, GrantEvent
from models.people import Beneficiary
from models.reference import is_valid_reference
from notifications.campaigns.fanout import FANOUT_LEASE_KEY
from notifications.sms.queues import BULK_QUEUE
from tests.factories import make_staff, register

OPERATOR = f"cli:{getpass.getuser()}"


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def create(app, *extra):
    return run(
        app,
        "campaigns",
        "create",
        "--name",
        "Payment day",
        "--text-en",
        "Dear {first_name}, payday soon.",
        "--text-st",
        "{first_name}, tefo e haufi.",
        *extra,
    )


def test_create_preview_send_pause_resume_cancel_and_status(app, db, redis):
    register(db, district="Maseru")
    register(db, district="Leribe", language="st")
    result = create(app, "--districts", "Maseru,Leribe", "--grant-status", "registered")
    assert result.exit_code == 0, result.output
    campaign_id = result.output.strip()
    preview = run(app, "campaigns", "preview", campaign_id).output
    assert "en:       1 recipients x 1 part(s)" in preview and "st:       1 recipients" in preview
    assert "total: 2 recipients" in preview and "estimated cost: M0.60" in preview
    assert "sample [en]" in preview and "Dear Palesa, payday soon." in preview
    assert run(app, "campaigns", "send", campaign_id).output.strip() == "sending"
    assert redis.exists(FANOUT_LEASE_KEY.format(campaign_id=campaign_id))
    assert redis.llen(f"rq:queue:{BULK_QUEUE}") >= 1
    assert run(app, "campaigns", "pause", campaign_id).output.strip() == "paused"
    assert run(app, "campaigns", "resume", campaign_id).output.strip() == "sending"
    assert run(app, "campaigns", "cancel", campaign_id).output.strip() == "cancelled"
    refused = run(app, "campaigns", "resume", campaign_id)
    assert refused.exit_code == 1 and "a cancelled campaign cannot be resumed" in refused.output
    status = run(app, "campaigns", "status", campaign_id).output
    assert "cancelled" in status and "left out (STOP) 0" in status


def test_create_refuses_bad_input_with_the_reason(app, db):
    result = create(app, "--districts", "Gauteng")
    assert result.exit_code != 0 and "unknown district 'Gauteng'" in result.output
    result = run(app, "campaigns", "create", "--name", "x", "--text-en", "Hi {name}", "--text-st", "Lumela")
    assert result.exit_code != 0 and "unknown placeholder {name}" in result.output
    assert create(app, "--send-at", "tomorrow").exit_code != 0


def test_send_at_is_lesotho_time_and_schedules(app, db):
    campaign_id = create(app, "--send-at", "2999-01-01T09:00").output.strip()
    assert run(app, "campaigns", "send", campaign_id).output.strip() == "scheduled"
    with db.session() as session:
        send_at = session.get(Campaign, int(campaign_id)).send_at
    assert (send_at.hour if send_at.tzinfo else send_at.hour) == 7  # 09:00 in Maseru is 07:00 UTC


def audit_entries(db, object_type="campaign") -> list[tuple[str, str, str, dict]]:
    """(action, actor, object id, details) of every audit entry about `object_type`, oldest first."""
    with db.session() as session:
        entries = session.execute(
            select(AuditLog).where(AuditLog.object_type == object_type).order_by(AuditLog.id)
        ).scalars()
        return [(entry.action, entry.actor, entry.object_id, entry.details_dict) for entry in entries]


def status_of(db, campaign_id) -> str:
    with db.session() as session:
        return session.get(Campaign, int(campaign_id)).status


def test_resume_of_a_draft_is_refused_and_it_stays_a_draft(app, db):
    """As in the console and the API: only a paused campaign resumes; a draft goes out with `send`."""
    register(db)
    campaign_id = create(app).output.strip()
    refused = run(app, "campaigns", "resume", campaign_id)
    assert refused.exit_code == 1
    assert "a draft campaign cannot be resumed; only a paused one can" in refused.output
    assert status_of(db, campaign_id) == CampaignStatus.DRAFT
    assert [action for action, *_ in audit_entries(db)] == ["campaign.create"]


def test_every_campaign_command_writes_its_audit_entry_naming_the_operator(app, db, redis):
    register(db)
    campaign_id = create(app, "--districts", "Maseru").output.strip()
    for command in ("send", "pause", "resume", "cancel"):
        assert run(app, "campaigns", command, campaign_id).exit_code == 0
    entries = audit_entries(db)
    assert [(action, actor, object_id) for action, actor, object_id, _ in entries] == [
        (f"campaign.{action}", OPERATOR, campaign_id) for action in ("create", "send", "pause", "resume", "cancel")
    ]
    assert all(details["via"] == "cli" for *_, details in entries)
    assert entries[0][3]["audience"] and '"Maseru"' in entries[0][3]["audience"]
    assert [(details["before"], details["after"]) for *_, details in entries[1:]] == [
        ("draft", "sending"),
        ("sending", "paused"),
        ("paused", "sending"),
        ("sending", "cancelled"),
    ]


def test_as_names_the_staff_account_whose_role_and_districts_apply(app, db, redis):
    make_staff(db, "officer@example.org", "officer", districts=["Leribe"])
    make_staff(db, "viewer@example.org", "viewer")
    register(db, district="Leribe")
    refused = create(app, "--districts", "Maseru", "--as", "officer@example.org")
    assert refused.exit_code == 1 and "Maseru is outside your districts" in refused.output
    campaign_id = create(app, "--as", "officer@example.org").output.strip()
    with db.session() as session:
        campaign = session.get(Campaign, int(campaign_id))
        assert campaign.audience.districts == ["Leribe"] and campaign.created_by == "officer@example.org"
    refused = run(app, "campaigns", "send", campaign_id, "--as", "viewer@example.org")
    assert refused.exit_code == 1 and "needs the officer role" in refused.output
    assert status_of(db, campaign_id) == CampaignStatus.DRAFT
    assert run(app, "campaigns", "send", campaign_id, "--as", "officer@example.org").output.strip() == "sending"
    assert [(action, actor) for action, actor, *_ in audit_entries(db)] == [
        ("campaign.create", "officer@example.org"),
        ("campaign.send", "officer@example.org"),
    ]
    assert run(app, "campaigns", "send", campaign_id, "--as", "nobody@example.org").exit_code == 1


def test_a_send_time_in_the_past_is_refused(app, db):
    """The compose form's rule: the officer meant another day, and sending at once would surprise them."""
    an_hour_ago = lesotho_time(utcnow() - timedelta(hours=1)).replace(tzinfo=None)
    refused = create(app, "--send-at", an_hour_ago.isoformat(timespec="minutes"))
    assert refused.exit_code == 1 and "the send time is in the past" in refused.output
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_audience_options_are_read_as_the_compose_form_reads_them(app, db):
    refused = create(app, "--age", "18-350")
    assert refused.exit_code == 1 and "age max must be between 0 and 120" in refused.output
    refused = create(app, "--registered-from", "2026-13-01")
    assert refused.exit_code == 1 and "registered from must be a date such as 2026-12-01" in refused.output
    campaign_id = create(app, "--age", "18-35", "--registered-to", "2026-11-01", "--language", "st").output.strip()
    with db.session() as session:
        audience = session.get(Campaign, int(campaign_id)).audience
    assert (audience.age_min, audience.age_max, audience.languages) == (18, 35, ["st"])
    assert audience.registered_to.isoformat() == "2026-11-01"


def test_series_start_and_stop(app, db):
    assert "every 7 days" in run(app, "campaigns", "series", "start").output
    assert run(app, "campaigns", "series", "stop").output.strip() == "stopped"
    assert run(app, "campaigns", "series", "stop").output.strip() == "the series was not running"
    with db.session() as session:
        series_id = str(session.execute(select(CovidSeries.id)).scalar_one())
    entries = audit_entries(db, "covid_series")
    assert [(action, actor, object_id) for action, actor, object_id, _ in entries] == [
        ("covid_series.start", OPERATOR, series_id),
        ("covid_series.stop", OPERATOR, series_id),
    ]
    assert entries[0][3]["interval_days"] == 7 and all(details["via"] == "cli" for *_, details in entries)


def test_a_district_limited_officer_may_not_start_the_series_that_reaches_every_district(app, db):
    make_staff(db, "officer@example.org", "officer", districts=["Leribe"])
    refused = run(app, "campaigns", "series", "start", "--as", "officer@example.org")
    assert refused.exit_code == 1 and "the series reaches every district" in refused.output
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CovidSeries)) == 0


def test_seed_demo_makes_realistic_beneficiaries_with_histories(app, db):
    result = run(app, "seed-demo", "--beneficiaries", "300")
    assert result.exit_code == 0 and "added 300 beneficiaries" in result.output
    assert run(app, "seed-demo", "--beneficiaries", "200", "--seed", "7").exit_code == 0
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 500
        assert session.scalar(select(func.count()).select_from(Grant)) == 500
        assert session.scalar(select(func.count()).select_from(GrantEvent)) > 500
        references = session.execute(select(Beneficiary.reference)).scalars().all()
        statuses = set(session.execute(select(Grant.status)).scalars())
    assert all(is_valid_reference(reference) for reference in references)
    assert {"registered", "paid", "under_review"} <= statuses
    reference, _ = register(db)  # the sequences still hand out fresh ids after seeding
    assert is_valid_reference(reference)
