"""The USSD callbacks as the provider calls them: form posts in, `CON`/`END` text out."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from sqlalchemy import select

from models.ussd import UssdSessionRecord

USSD = "/webhooks/at/ussd"


def hop(client, text="", session_id="ATUid_1", phone="+26658000001", **extra):
    form = {
        "sessionId": session_id,
        "serviceCode": "*123#",
        "phoneNumber": phone,
        "networkCode": "65101",
        "text": text,
        **extra,
    }
    return client.post(USSD, data=form)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_first_dial_asks_for_a_language_as_plain_text(client):
    response = hop(client)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert body.startswith("CON ") and "1" in body and "English" in body and "Sesotho" in body


@pytest.mark.parametrize("phone", ["58000001", "+266 5800 0001", "26658000001", "+27821234567"])
def test_local_and_south_african_numbers_are_served(client, phone):
    assert hop(client, phone=phone).get_data(as_text=True).startswith("CON ")


@pytest.mark.parametrize("phone", ["+254712345678", "+12025550123", "not-a-number"])
def test_other_numbers_get_a_polite_end(client, phone):
    response = hop(client, phone=phone)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("END ")


@pytest.mark.parametrize("missing", ["sessionId", "phoneNumber", "serviceCode"])
def test_malformed_callbacks_get_400_with_a_reason(client, missing):
    form = {"sessionId": "s", "serviceCode": "*123#", "phoneNumber": "+26658000001", "text": ""}
    del form[missing]
    response = client.post(USSD, data=form)
    assert response.status_code == 400
    assert missing in response.get_data(as_text=True)


def test_an_overlong_text_is_refused(client):
    response = hop(client, text="1*" * 2000)
    assert response.status_code == 400 and "text" in response.get_data(as_text=True)


def test_an_oversized_body_is_refused(client):
    response = hop(client, padding="x" * 20_000)
    assert response.status_code == 400 and "longer than" in response.get_data(as_text=True)


def test_a_body_with_too_many_fields_is_refused(client):
    response = hop(client, **{f"extra{number}": "1" for number in range(40)})
    assert response.status_code == 400 and "form fields" in response.get_data(as_text=True)


def test_a_multipart_post_is_read_too(client):
    form = {"sessionId": "ATUid_m", "serviceCode": "*123#", "phoneNumber": "+26658000001", "text": ""}
    response = client.post(USSD, data=form, content_type="multipart/form-data")
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("CON ")


def test_an_answer_with_a_space_arrives_as_typed(client):
    hop(client, session_id="ATUid_s")
    hop(client, "1", session_id="ATUid_s")  # English
    hop(client, "1*1", session_id="ATUid_s")  # Register: the name question
    body = hop(client, "1*1*Thabo Mokoena", session_id="ATUid_s").get_data(as_text=True)  # posted as Thabo+Mokoena
    assert body.startswith("CON ") and "letters only" not in body and "name" not in body


def test_the_webhook_token_is_enforced_on_every_webhook(make_app, db, redis):
    client = make_app(webhook_token="s3cret").test_client()
    for path in (USSD, f"{USSD}/events", "/webhooks/at/sms/inbound", "/webhooks/at/sms/delivery"):
        assert client.post(path, data={}).status_code == 403
        assert client.post(f"{path}?token=wrong", data={}).status_code == 403
    form = {"sessionId": "s", "serviceCode": "*123#", "phoneNumber": "+26658000001", "text": ""}
    assert client.post(f"{USSD}?token=s3cret", data=form).status_code == 200


def test_a_service_code_other_than_this_deployments_is_refused(make_app, db, redis):
    client = make_app(ussd_service_code="*123#").test_client()
    assert hop(client, serviceCode="*999#").status_code == 400
    assert hop(client).status_code == 200


def test_redis_down_gets_a_polite_end_within_a_second_and_a_log_line(make_app, db, caplog):
    client = make_app(redis_url=f"redis://127.0.0.1:{closed_port()}/0").test_client()
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        response = hop(client)
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("END ")
    assert any("USSD hop failed" in record.getMessage() for record in caplog.records)
    assert "58000001" not in caplog.text  # no full phone number in the log


def test_database_down_gets_a_polite_end_within_a_second(make_app, redis, caplog):
    client = make_app(database_url=f"postgresql+psycopg://127.0.0.1:{closed_port()}/gateway").test_client()
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        response = hop(client)
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("END ")
    assert any("USSD hop failed" in record.getMessage() for record in caplog.records)


def test_session_end_events_are_recorded_once_per_session(client, db):
    form = {
        "sessionId": "ATUid_9",
        "phoneNumber": "+26658000001",
        "serviceCode": "*123#",
        "networkCode": "65101",
        "status": "Incomplete",
        "hopsCount": "4",
        "durationInMillis": "35000",
        "cost": "LSL 0.10",
        "errorMessage": "",
        "date": "2021-03-01 10:00:00",
        "input": "1*2",
        "lastAppResponse": "CON ...",
    }
    for status in ("Incomplete", "Success"):
        assert client.post(f"{USSD}/events", data={**form, "status": status}).status_code == 200
    with db.session() as session:
        [record] = session.execute(select(UssdSessionRecord)).scalars().all()
        assert (record.phone, record.status, record.hops_count, record.duration_ms) == (
            "+26658000001",
            "Success",
            4,
            35000,
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"hopsCount": "four"}, "hopsCount"), ({"status": ""}, "status"), ({"date": "yesterday"}, "date")],
)
def test_malformed_session_events_get_400(client, change, reason):
    form = {"sessionId": "ATUid_9", "phoneNumber": "+26658000001", "status": "Success", **change}
    response = client.post(f"{USSD}/events", data=form)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
