"""Campaign pages through the real app on both databases and a real Redis: compose, preview, confirm, progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from models.campaigns import Campaign, CampaignStatus
from models.clock import LESOTHO
from models.messages import MessagePriority
from notifications.campaigns.fanout import FANOUT_LEASE_KEY, run_fanout
from notifications.campaigns.lifecycle import complete_finished_campaigns
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.queues import BULK_QUEUE
from tests.factories import make_staff, register
from tests.gateway.test_auth import audit_actions, csrf_from, login

TEXT_EN = "Dear {first_name}, training in {district} on Monday. Ref {reference}."
TEXT_ST = "{first_name}, thupelo {district} ka Mantaha. Nomoro {reference}."
REFRESH = re.compile(r'<meta http-equiv="refresh" content="(\d+)">')


def officer(client, db, email="officer@example.org", role="officer", districts=None):
    make_staff(db, email, role, districts=districts)
    login(client, email)
    return email


def compose(client, **fields):
    form = {"name": "Training", "text_en": TEXT_EN, "text_st": TEXT_ST, **fields}
    return client.post("/campaigns/new", data={**form, "csrf_token": csrf_from(client, "/campaigns")})


def post(client, path):
    return client.post(path, data={"csrf_token": csrf_from(client, "/campaigns")})


def campaign(db, campaign_id) -> Campaign:
    with db.session() as session:
        return session.get(Campaign, campaign_id)


def new_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/campaigns/(\d+)/preview$", response.headers["Location"]).group(1))


def test_compose_saves_a_draft_and_the_preview_shows_recipients_parts_cost_and_samples(client, db):
    register(db, full_name="Palesa Mokoena", district="Maseru", language="en")
    register(db, full_name="Thabo Mofokeng", district="Maseru", language="st")
    register(db, district="Leribe")
    officer(client, db)
    campaign_id = new_id(compose(client, districts=["Maseru"]))
    saved = campaign(db, campaign_id)
    assert (saved.status, saved.audience.districts, saved.created_by) == ("draft", ["Maseru"], "officer@example.org")
    assert ("campaign.create", "officer@example.org") in audit_actions(db)
    page = client.get(f"/campaigns/{campaign_id}/preview").get_data(as_text=True)
    assert '<th class="n" id="total-recipients">2</th>' in page
    assert "M0.60" in page  # two recipients, one part each, M0.30 a part
    assert "Dear Palesa, training in Maseru on Monday." in page
    assert "Thabo, thupelo Maseru ka Mantaha." in page
    assert "+266****" in page and "outside GSM-7" not in page
    assert "Confirm: send to 2 people" in page
    assert 'name="csrf_token"' in page


def test_the_preview_warns_of_characters_outside_gsm7(client, db):
    register(db)
    officer(client, db)
    campaign_id = new_id(compose(client, text_en="Payments start on Monday \u2013 bring your ID \u201cbook\u201d."))
    page = client.get(f"/campaigns/{campaign_id}/preview").get_data(as_text=True)
    assert "The English text has characters outside GSM-7" in page and "\u201c" in page


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"text_en": "Hello {firstname}"}, "unknown placeholder {firstname}"),
        ({"name": ""}, "needs a name"),
        ({"age_min": "forty"}, "whole number"),
        ({"age_min": "40", "age_max": "30"}, "age band is empty"),
        ({"registered_from": "2026-13-01"}, "must be a date"),
        ({"send_at": "2020-01-01T09:00"}, "in the past"),
    ],
)
def test_a_refused_campaign_comes_back_with_the_reason_and_what_was_typed(client, db, fields, reason):
    officer(client, db)
    response = compose(client, **{"name": "Kept name", **fields})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and reason in page
    assert "Dear {first_name}" in page or "Hello {firstname}" in page
    with db.session() as session:
        assert session.execute(select(Campaign)).first() is None


def test_a_send_time_is_lesotho_time_and_confirming_schedules(client, db, redis):
    register(db)
    officer(client, db)
    local = (datetime.now(LESOTHO) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    campaign_id = new_id(compose(client, send_at=local.strftime("%Y-%m-%dT%H:%M")))
    assert campaign(db, campaign_id).send_at == local.astimezone(UTC)
    assert f"Confirm: schedule for {local:%Y-%m-%d} 09:00" in client.get(f"/campaigns/{campaign_id}/preview").get_data(
        as_text=True
    )
    response = post(client, f"/campaigns/{campaign_id}/send")
    assert response.headers["Location"] == f"/campaigns/{campaign_id}"
    assert campaign(db, campaign_id).status == CampaignStatus.SCHEDULED
    assert Queue(BULK_QUEUE, connection=redis).count == 0  # nothing to fan out before its time
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert REFRESH.search(page).group(1) == "30" and "09:00" in page


def test_confirming_starts_the_fan_out_and_the_progress_page_refreshes_itself(client, db, redis):
    register(db)
    officer(client, db)
    campaign_id = new_id(compose(client))
    response = post(client, f"/campaigns/{campaign_id}/send")
    assert response.status_code == 302 and response.headers["Location"] == f"/campaigns/{campaign_id}"
    assert campaign(db, campaign_id).status == CampaignStatus.SENDING
    assert [job.func_name for job in Queue(BULK_QUEUE, connection=redis).jobs] == [
        "notifications.sms.jobs.fan_out_campaign",
        "notifications.sms.jobs.drain_outbox",
    ]
    assert redis.exists(FANOUT_LEASE_KEY.format(campaign_id=campaign_id))
    assert ("campaign.send", "officer@example.org") in audit_actions(db)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert REFRESH.search(page).group(1) == "3"
    assert '<strong id="campaign-status">sending</strong>' in page
    assert "Pause" in page and "Cancel" in page and "Resume" not in page


def test_the_progress_page_counts_what_was_sent_and_stops_refreshing_when_completed(
    client, db, redis, settings, emulator
):
    for _ in range(4):
        register(db)
    officer(client, db)
    campaign_id = new_id(compose(client))
    post(client, f"/campaigns/{campaign_id}/send")
    run_fanout(db, redis, campaign_id)
    settings = settings.replace(
        at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0, quiet_hours=None
    )
    provider = AfricasTalkingProvider.from_settings(settings)
    Dispatcher(settings=settings, db=db, redis=redis, provider=provider).drain(MessagePriority.BULK)
    with db.session() as session:
        assert complete_finished_campaigns(session) == [campaign_id]
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert '<strong id="campaign-status">completed</strong>' in page
    assert '<td class="n" id="count-recipients">4</td>' in page and '<td class="n" id="count-submitted">4</td>' in page
    assert REFRESH.search(page) is None and "<form" not in page.split("<main>")[1]
    listing = client.get("/campaigns").get_data(as_text=True)
    assert "Training" in listing and "completed" in listing and '<td class="n">4</td>' in listing


def test_pause_resume_and_cancel_are_audited_and_illegal_moves_refused_with_a_reason(client, db, redis):
    register(db)
    officer(client, db)
    campaign_id = new_id(compose(client))
    response = post(client, f"/campaigns/{campaign_id}/pause")
    assert response.status_code == 409 and "a draft campaign cannot be paused" in response.get_data(as_text=True)
    for action, status in (("send", "sending"), ("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        assert post(client, f"/campaigns/{campaign_id}/{action}").status_code == 302
        assert campaign(db, campaign_id).status == status
    response = post(client, f"/campaigns/{campaign_id}/resume")
    assert (
        response.status_code == 409
        and "a cancelled campaign cannot be resumed; only a paused one can" in response.get_data(as_text=True)
    )
    actions = [action for action, _ in audit_actions(db) if action.startswith("campaign.")]
    assert actions == ["campaign.create", "campaign.send", "campaign.pause", "campaign.resume", "campaign.cancel"]


def test_viewers_read_campaigns_but_cannot_compose_or_steer(client, db):
    register(db)
    officer(client, db)
    campaign_id = new_id(compose(client))
    client.post("/logout", data={"csrf_token": csrf_from(client, "/campaigns")})
    officer(client, db, "viewer@example.org", "viewer")
    assert client.get("/campaigns").status_code == 200
    preview = client.get(f"/campaigns/{campaign_id}/preview")
    assert preview.status_code == 200 and "Confirm" not in preview.get_data(as_text=True)
    assert "<button" not in client.get(f"/campaigns/{campaign_id}").get_data(as_text=True).split("<main>")[1]
    assert client.get("/campaigns/new").status_code == 403
    assert compose(client).status_code == 403
    for action in ("send", "pause", "resume", "cancel"):
        assert post(client, f"/campaigns/{campaign_id}/{action}").status_code == 403
    assert campaign(db, campaign_id).status == CampaignStatus.DRAFT


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    for path in ("/campaigns", "/campaigns/new", "/campaigns/1", "/campaigns/1/preview"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_district_limited_officer_sends_only_to_their_districts(client, db):
    make_staff(db, "admin@example.org", "admin")
    officer(client, db, districts="Leribe")
    campaign_id = new_id(compose(client))
    assert campaign(db, campaign_id).audience.districts == ["Leribe"]
    response = compose(client, districts=["Leribe", "Maseru"])
    assert response.status_code == 403 and "Maseru is outside your districts" in response.get_data(as_text=True)


def test_a_missing_campaign_is_404(client, db):
    officer(client, db)
    assert client.get("/campaigns/999").status_code == 404
    assert client.get("/campaigns/999/preview").status_code == 404
    assert post(client, "/campaigns/999/send").status_code == 404
