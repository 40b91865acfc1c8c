"""`flask --app wsgi campaigns …` and `seed-demo`, through the CLI runner on the real database and Redis."""

from __future__ import annotations

from sqlalchemy import func, select

from models.campaigns import Campaign
from models.grants import Grant, GrantEvent
from models.people import Beneficiary
from models.reference import is_valid_reference
from notifications.campaigns.fanout import FANOUT_LEASE_KEY
from notifications.sms.queues import BULK_QUEUE
from tests.factories import register


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
    assert refused.exit_code == 1 and "cancelled campaign cannot be sent or resumed" in refused.output
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


def test_series_start_and_stop(app, db):
    assert "every 7 days" in run(app, "campaigns", "series", "start").output
    assert run(app, "campaigns", "series", "stop").output.strip() == "stopped"
    assert run(app, "campaigns", "series", "stop").output.strip() == "the series was not running"


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
