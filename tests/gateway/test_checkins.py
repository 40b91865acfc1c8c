"""Check-ins through the real app on both databases and a real Redis: the API, the console pages and their CSV, an
SMS answer through the inbound webhook, and the OpenAPI description."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rq import Queue

from gateway.api.openapi import openapi_document
from notifications.sms.queues import BULK_QUEUE
from tests.factories import make_staff, register
from tests.gateway.test_auth import audit_actions, bearer, csrf_from, login, run, token_for
from tests.notifications.checkins.test_checkins import QUESTIONS, definition


@pytest.fixture
def officer(db):
    make_staff(db, "officer@example.org", "officer")
    return bearer(token_for(db, "officer@example.org"))


@pytest.fixture
def berea_viewer(db):
    make_staff(db, "viewer@example.org", "viewer", districts=["Berea"])
    return bearer(token_for(db, "viewer@example.org"))


def inbound(client, phone, text, provider_id):
    form = {"from": phone, "to": "12345", "text": text, "date": "2026-11-29 10:00:00", "id": provider_id}
    return client.post("/webhooks/at/sms/inbound", data=form)


def test_the_api_defines_sends_lists_and_counts_answers(client, db, redis, officer, berea_viewer):
    _, maseru = register(db, district="Maseru", sex="female", year_of_birth=1990)
    _, berea = register(db, district="Berea", sex="male", year_of_birth=1960)
    assert client.post("/api/v1/checkins", json={"title_en": "x"}, headers=officer).status_code == 400
    assert client.post("/api/v1/checkins", json=definition(), headers=berea_viewer).status_code == 403
    created = client.post("/api/v1/checkins", json=definition(districts=[]), headers=officer)
    assert created.status_code == 201, created.json
    checkin_id = created.json["id"]
    assert created.json["status"] == "draft" and len(created.json["questions"]) == len(QUESTIONS)
    sent = client.post(f"/api/v1/checkins/{checkin_id}/send", headers=officer)
    assert sent.status_code == 200 and sent.json["status"] == "open" and sent.json["invitations"]["invited"] == 2
    assert Queue(BULK_QUEUE, connection=redis).count == 2  # the invitation's fan-out and a drain
    assert client.post(f"/api/v1/checkins/{checkin_id}/send", headers=officer).status_code == 409
    # Answering by SMS through the provider's webhook.
    for number, text in enumerate(("YES", "1", "4", "2")):
        assert inbound(client, maseru, text, f"m{number}").status_code == 200
    for number, text in enumerate(("E", "2", "99", "3")):
        assert inbound(client, berea, text, f"b{number}").status_code == 200
    listed = client.get("/api/v1/checkins", headers=officer).json["checkins"]
    assert [c["id"] for c in listed] == [checkin_id] and listed[0]["invitations"]["answered"] == 2
    # A check-in for every district reaches outside the viewer's: not theirs to see (the campaigns' rule).
    assert client.get("/api/v1/checkins", headers=berea_viewer).json["checkins"] == []
    answers = client.get(f"/api/v1/checkins/{checkin_id}/answers", headers=officer).json["answers"]
    assert {
        "question": 1,
        "question_text": "Do you have an income now?",
        "answer": "yes",
        "district": "Maseru",
        "sex": "female",
        "age_band": "35-44",
        "people": 1,
    } in answers
    assert {(a["question"], a["answer"], a["district"]) for a in answers if a["question"] > 1} == {
        (2, "4", "Maseru"),
        (2, "prefer not to answer", "Berea"),
        (3, "Yes", "Maseru"),
        (3, "Closed", "Berea"),
    }
    closed = client.post(f"/api/v1/checkins/{checkin_id}/close", headers=officer)
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    assert client.get("/api/v1/checkins/999/answers", headers=officer).status_code == 404
    actions = [action for action, actor in audit_actions(db) if actor == "officer@example.org"]
    assert {"checkin.create", "checkin.send", "checkin.close"} <= set(actions)


def test_the_openapi_description_lists_the_checkin_routes(app):
    with app.app_context():
        paths = openapi_document()["paths"]
    assert {"/api/v1/checkins", "/api/v1/checkins/{checkin_id}/answers", "/api/v1/checkins/{checkin_id}/send"} <= set(
        paths
    )


def test_the_console_defines_sends_shows_answers_and_downloads_csv(client, db, redis, limits):
    _, phone = register(db, district="Leribe", sex="female", year_of_birth=1990)
    make_staff(db, "officer@example.org", "officer")
    login(client, "officer@example.org")
    assert 'href="/checkins"' in client.get("/checkins").get_data(as_text=True)
    form = {
        "title_en": "Six months on",
        "title_st": "Likhoeli tse tseletseng",
        "q1_kind": "choice",
        "q1_text_en": "Is your business still running?",
        "q1_text_st": "Na khoebo ea hau e ntse e sebetsa?",
        "q1_options_en": "Yes\n=Closed",
        "q1_options_st": "E\nE koetsoe",
        "districts": ["Leribe"],
        "remind_after_days": "3",
    }
    bad = client.post(
        "/checkins/new", data={**form, "q1_options_st": "E", "csrf_token": csrf_from(client, "/checkins")}
    )
    assert bad.status_code == 400 and "option 2 (English) is empty" in bad.get_data(as_text=True)
    made = client.post("/checkins/new", data={**form, "csrf_token": csrf_from(client, "/checkins")})
    assert made.status_code == 302
    detail_path = made.headers["Location"]
    assert "Sending asks 1 person" in client.get(detail_path).get_data(as_text=True)
    sent = client.post(f"{detail_path}/send", data={"csrf_token": csrf_from(client, detail_path)})
    assert sent.status_code == 302
    for number, text in enumerate(("YES", "2")):
        inbound(client, phone, text, f"c{number}")
    page = client.get(detail_path).get_data(as_text=True)
    assert "Answers by district, sex and age band" in page and "Leribe" in page and "35-44" in page
    download = client.get(f"{detail_path}/answers.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    # The option typed as "=Closed" cannot become a spreadsheet formula.
    assert rows[1] == ["1", "Is your business still running?", "'=Closed", "Leribe", "female", "35-44", "1"]


def test_a_district_limited_officer_defines_for_their_districts_and_sees_no_others(client, db, settings):
    make_staff(db, "admin@example.org", "admin")
    make_staff(db, "berea@example.org", "officer", districts=["Berea"])
    admin = bearer(token_for(db, "admin@example.org"))
    officer = bearer(token_for(db, "berea@example.org"))
    everywhere = client.post("/api/v1/checkins", json=definition(districts=[]), headers=admin).json["id"]
    refused = client.post("/api/v1/checkins", json=definition(districts=["Maseru"]), headers=officer)
    assert refused.status_code == 400 and "outside your districts" in refused.json["error"]
    own = client.post("/api/v1/checkins", json=definition(districts=[]), headers=officer)
    assert own.status_code == 201 and own.json["audience"]["districts"] == ["Berea"]  # none given: theirs
    assert [c["id"] for c in client.get("/api/v1/checkins", headers=officer).json["checkins"]] == [own.json["id"]]
    assert client.post(f"/api/v1/checkins/{everywhere}/close", headers=officer).status_code == 404
    login(client, "berea@example.org")
    assert client.get(f"/checkins/{everywhere}").status_code == 404
    assert client.get(f"/checkins/{everywhere}/answers.csv").status_code == 404
    assert "Six months on" in client.get("/checkins").get_data(as_text=True)


def test_the_cli_defines_sends_closes_and_prints_the_answers(app, db, redis, tmp_path, limits):
    _, phone = register(db, district="Maseru", sex="male", year_of_birth=1980)
    path = tmp_path / "checkin.json"
    path.write_text(json.dumps(definition()), encoding="utf-8")
    created = run(app, "checkins", "create", str(path))
    assert created.exit_code == 0, created.output
    checkin_id = created.output.strip()
    sent = run(app, "checkins", "send", checkin_id)
    assert sent.exit_code == 0 and sent.output.startswith("people asked: 1;")
    assert run(app, "checkins", "send", checkin_id).exit_code == 1  # only a draft can be sent
    with app.test_client() as client:
        for number, text in enumerate(("YES", "2", "5", "3")):
            inbound(client, phone, text, f"cli{number}")
    listed = run(app, "checkins", "list").output
    assert listed.startswith(f"{checkin_id}\topen\t1/1\tSix months on")
    answers = list(csv.reader(io.StringIO(run(app, "checkins", "answers", checkin_id).output)))
    assert ["1", "Do you have an income now?", "no", "Maseru", "male", "45-54", "1"] in answers
    assert run(app, "checkins", "close", checkin_id).output == "closed\n"
    assert [a for a, actor in audit_actions(db) if a.startswith("checkin.")] == [
        "checkin.create",
        "checkin.send",
        "checkin.close",
    ]
