"""Campaigns over the JSON API, through the real app on both databases and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue

from gateway.api.openapi import openapi_document
from models.messages import MessagePriority
from notifications.campaigns.fanout import run_fanout
from notifications.campaigns.lifecycle import complete_finished_campaigns
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.queues import BULK_QUEUE
from tests.factories import make_staff, register
from tests.gateway.test_auth import audit_actions, bearer, token_for

TEXT_EN = "Dear {first_name}, your grant office in {district} opens on Monday."
TEXT_ST = "{first_name}, ofisi ea {district} e bula ka Mantaha."
BODY = {"name": "Office hours", "text_en": TEXT_EN, "text_st": TEXT_ST}


@pytest.fixture
def officer(db):
    make_staff(db, "officer@example.org", "officer")
    return bearer(token_for(db, "officer@example.org"))


@pytest.fixture
def viewer(db):
    make_staff(db, "viewer@example.org", "viewer")
    return bearer(token_for(db, "viewer@example.org"))


def create(client, headers, **changes) -> dict:
    response = client.post("/api/v1/campaigns", json={**BODY, **changes}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_create_preview_send_and_read_progress_until_completed(client, db, redis, settings, emulator, officer, viewer):
    register(db, district="Berea", language="en")
    register(db, district="Berea", language="st")
    register(db, district="Quthing")
    created = create(client, officer, districts=["Berea"], age_min=18)
    assert created["status"] == "draft" and created["audience"]["districts"] == ["Berea"]
    assert created["audience"]["age_min"] == 18 and created["created_by"] == "officer@example.org"
    campaign_id = created["id"]

    preview = client.get(f"/api/v1/campaigns/{campaign_id}/preview", headers=viewer).json
    assert preview["recipients"] == {"en": 1, "st": 1} and preview["total"] == 2
    assert preview["parts"] == {"en": 1, "st": 1} and preview["cost"] == 0.6 and preview["non_gsm"] == {}
    assert {sample["language"] for sample in preview["samples"]} == {"en", "st"}
    assert all("****" in sample["phone"] and "{" not in sample["text"] for sample in preview["samples"])

    sent = client.post(f"/api/v1/campaigns/{campaign_id}/send", headers=officer)
    assert sent.status_code == 200 and sent.json["status"] == "sending"
    assert Queue(BULK_QUEUE, connection=redis).count == 2  # the fan-out and a drain

    run_fanout(db, redis, campaign_id)
    settings = settings.replace(
        at_api_base_url=emulator.url, at_api_key="k", sms_rate_per_second=1000.0, quiet_hours=None
    )
    provider = AfricasTalkingProvider.from_settings(settings)
    Dispatcher(settings=settings, db=db, redis=redis, provider=provider).drain(MessagePriority.BULK)
    with db.session() as session:
        complete_finished_campaigns(session)
    shown = client.get(f"/api/v1/campaigns/{campaign_id}", headers=viewer).json
    assert shown["status"] == "completed" and shown["completed_at"]
    assert {key: shown["progress"][key] for key in ("recipients", "waiting", "submitted", "done")} == {
        "recipients": 2,
        "waiting": 0,
        "submitted": 2,
        "done": 2,
    }
    listed = client.get("/api/v1/campaigns", headers=viewer).json
    assert [c["id"] for c in listed["campaigns"]] == [campaign_id] and listed["more"] is False
    assert [action for action, _ in audit_actions(db) if action.startswith("campaign.")] == [
        "campaign.create",
        "campaign.send",
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"text_st": "Lumela {name}"}, "unknown placeholder {name}"),
        ({"districts": ["Gauteng"]}, "unknown district 'Gauteng'"),
        ({"grant_statuses": "rich"}, "unknown grant status 'rich'"),
        ({"age_max": "old"}, "whole number"),
        ({"name": "x" * 121}, "longer than 120"),
        ({"send_at": "tomorrow"}, "must be a date and time"),
    ],
)
def test_a_refused_campaign_is_a_400_with_the_reason(client, db, officer, changes, reason):
    response = client.post("/api/v1/campaigns", json={**BODY, **changes}, headers=officer)
    assert response.status_code == 400 and reason in response.json["error"]
    assert client.get("/api/v1/campaigns", headers=officer).json["campaigns"] == []


def test_a_body_that_is_not_a_json_object_is_a_400(client, db, officer):
    response = client.post("/api/v1/campaigns", data="name=x", headers=officer)
    assert response.status_code == 400 and "JSON object" in response.json["error"]


def test_send_at_without_an_offset_is_lesotho_time_and_send_schedules(client, db, redis, officer):
    register(db)
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    created = create(client, officer, send_at=f"{day.isoformat()}T09:00")
    assert created["send_at"] == f"{day.isoformat()}T07:00:00+00:00"  # Africa/Maseru is UTC+2
    sent = client.post(f"/api/v1/campaigns/{created['id']}/send", headers=officer)
    assert sent.json["status"] == "scheduled" and Queue(BULK_QUEUE, connection=redis).count == 0


def test_illegal_moves_are_a_409_with_the_reason(client, db, redis, officer):
    register(db)
    campaign_id = create(client, officer)["id"]
    response = client.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=officer)
    assert (
        response.status_code == 409
        and response.json["error"] == "a draft campaign cannot be resumed; only a paused one can"
    )
    for action, status in (("send", "sending"), ("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        response = client.post(f"/api/v1/campaigns/{campaign_id}/{action}", headers=officer)
        assert (response.status_code, response.json["status"]) == (200, status)
    response = client.post(f"/api/v1/campaigns/{campaign_id}/pause", headers=officer)
    assert response.status_code == 409 and "a cancelled campaign cannot be paused" in response.json["error"]


def test_viewers_read_but_cannot_change_and_anonymous_get_401(client, db, officer, viewer):
    register(db)
    campaign_id = create(client, officer)["id"]
    assert client.get(f"/api/v1/campaigns/{campaign_id}", headers=viewer).status_code == 200
    response = client.post("/api/v1/campaigns", json=BODY, headers=viewer)
    assert response.status_code == 403 and "officer" in response.json["error"]
    for action in ("send", "pause", "resume", "cancel"):
        assert client.post(f"/api/v1/campaigns/{campaign_id}/{action}", headers=viewer).status_code == 403
    for method, path in (
        ("get", "/api/v1/campaigns"),
        ("post", "/api/v1/campaigns"),
        ("get", f"/api/v1/campaigns/{campaign_id}"),
        ("get", f"/api/v1/campaigns/{campaign_id}/preview"),
        ("post", f"/api/v1/campaigns/{campaign_id}/send"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 401 and "error" in response.json


def test_a_missing_campaign_is_a_json_404(client, db, officer):
    for method, path in (("get", "/api/v1/campaigns/9"), ("get", "/api/v1/campaigns/9/preview")):
        response = getattr(client, method)(path, headers=officer)
        assert response.status_code == 404 and response.json == {"error": "no campaign 9"}
    response = client.post("/api/v1/campaigns/9/cancel", headers=officer)
    assert response.status_code == 404 and response.json == {"error": "no campaign 9"}


def test_a_district_limited_officer_cannot_send_an_all_districts_campaign(client, db):
    make_staff(db, "admin@example.org", "admin")
    make_staff(db, "leribe@example.org", "officer", districts="Leribe")
    admin, limited = bearer(token_for(db, "admin@example.org")), bearer(token_for(db, "leribe@example.org"))
    register(db)
    campaign_id = create(client, admin)["id"]
    response = client.post(f"/api/v1/campaigns/{campaign_id}/send", headers=limited)
    assert response.status_code == 403 and "every district" in response.json["error"]
    assert create(client, limited)["audience"]["districts"] == ["Leribe"]
    response = client.post("/api/v1/campaigns", json={**BODY, "districts": ["Maseru"]}, headers=limited)
    assert response.status_code == 403 and "outside your districts" in response.json["error"]


def test_paging_the_list(client, db, officer):
    ids = [create(client, officer, name=f"Campaign {n}")["id"] for n in range(3)]
    first = client.get("/api/v1/campaigns?limit=2", headers=officer).json
    second = client.get("/api/v1/campaigns?limit=2&page=2", headers=officer).json
    assert [c["id"] for c in first["campaigns"]] == ids[:0:-1] and first["more"] is True
    assert [c["id"] for c in second["campaigns"]] == ids[:1] and second["more"] is False
    assert client.get("/api/v1/campaigns?limit=0", headers=officer).status_code == 400


def test_the_openapi_document_describes_every_campaign_route(app):
    with app.app_context():
        paths = openapi_document()["paths"]
    assert set(paths["/api/v1/campaigns"]) == {"get", "post"}
    for action in ("send", "pause", "resume", "cancel"):
        assert "409" in paths[f"/api/v1/campaigns/{{campaign_id}}/{action}"]["post"]["responses"]
    assert "get" in paths["/api/v1/campaigns/{campaign_id}/preview"]
