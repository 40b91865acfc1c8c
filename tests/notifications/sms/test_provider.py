"""The provider client against real HTTP: the emulator, or a loopback server that answers what a test scripts."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

from config import load_settings
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.providers.base import (
    Outcome,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientResult,
)

API_KEY = "test-api-key"
USERNAME = "returnees"
SENDER_ID = "RETURNEES"
VODACOM = "+26658000001"
ECONET = "+26662000002"
SOUTH_AFRICA = "+27821234567"
SHORT_TIMEOUT_SECONDS = 0.5
HANG_SECONDS = 2.0


@pytest.fixture
def provider(emulator):
    return AfricasTalkingProvider(USERNAME, API_KEY, emulator.url, sender_id=SENDER_ID)


def set_outcomes(emulator, spec):
    answer = requests.post(f"{emulator.url}/_emulator/outcomes", json=spec, timeout=5)
    answer.raise_for_status()


def recorded(emulator):
    return requests.get(f"{emulator.url}/_emulator/messages", timeout=5).json()


def test_accepted_batch_returns_one_result_per_number_with_message_ids(provider, emulator):
    results = provider.send("Dumela! Your registration is received.", [VODACOM, ECONET, SOUTH_AFRICA])

    assert [result.phone for result in results] == [VODACOM, ECONET, SOUTH_AFRICA]
    assert all(result.outcome is Outcome.ACCEPTED and result.accepted for result in results)
    assert all(result.message_id.startswith("ATXid_") for result in results)
    assert len({result.message_id for result in results}) == 3
    assert {(result.status_code, result.status, result.cost, result.parts, result.error) for result in results} == {
        (101, "Success", "LSL 0.3000", 1, None)
    }
    messages = recorded(emulator)["messages"]
    assert [(m["id"], m["phone"]) for m in messages] == [(r.message_id, r.phone) for r in results]


def test_emulator_records_exactly_what_was_sent(provider, emulator):
    text = "Grant approved: M1,500.00 — Mohale’s Hoek"  # UCS-2 on purpose: must arrive intact
    provider.send(text, [VODACOM, ECONET])

    [call] = recorded(emulator)["requests"]
    assert call["form"] == {
        "username": USERNAME,
        "to": f"{VODACOM},{ECONET}",
        "message": text,
        "bulkSMSMode": "1",
        "from": SENDER_ID,
    }
    assert call["headers"]["Apikey"] == API_KEY
    assert call["headers"]["Accept"] == "application/json"
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert call["http_status"] == 201
    assert [(m["phone"], m["text"], m["sender"]) for m in recorded(emulator)["messages"]] == [
        (VODACOM, text, SENDER_ID),
        (ECONET, text, SENDER_ID),
    ]


def test_no_sender_id_and_enqueue_are_sent_as_the_sdk_sends_them(emulator):
    AfricasTalkingProvider(USERNAME, API_KEY, emulator.url, enqueue=True).send("Hello", [VODACOM])

    [call] = recorded(emulator)["requests"]
    assert "from" not in call["form"]
    assert call["form"]["enqueue"] == "1"


def test_invalid_number_fails_only_that_recipient(provider, emulator):
    set_outcomes(emulator, {"numbers": {ECONET: "invalid_number"}})

    vodacom, econet, south_africa = provider.send("Hello", [VODACOM, ECONET, SOUTH_AFRICA])

    assert vodacom.outcome is Outcome.ACCEPTED and south_africa.outcome is Outcome.ACCEPTED
    assert econet.outcome is Outcome.PERMANENT
    assert (econet.status_code, econet.status, econet.message_id) == (403, "InvalidPhoneNumber", None)
    assert "InvalidPhoneNumber" in econet.error
    assert [m["phone"] for m in recorded(emulator)["messages"]] == [VODACOM, SOUTH_AFRICA]


def test_insufficient_balance_is_its_own_outcome(provider, emulator):
    set_outcomes(emulator, {"default": "insufficient_balance"})

    results = provider.send("Hello", [VODACOM, ECONET])

    assert {(result.outcome, result.status_code, result.message_id) for result in results} == {
        (Outcome.NO_CREDIT, 405, None)
    }


@pytest.mark.parametrize(
    ("status_code", "outcome"),
    [
        (102, Outcome.ACCEPTED),
        (402, Outcome.PERMANENT),
        (406, Outcome.PERMANENT),
        (409, Outcome.PERMANENT),
        (501, Outcome.RETRY),
        (502, Outcome.RETRY),
    ],
)
def test_recipient_status_codes_map_to_outcomes(provider, emulator, status_code, outcome):
    set_outcomes(emulator, {"numbers": {VODACOM: {"outcome": "status_code", "status_code": status_code}}})

    [result] = provider.send("Hello", [VODACOM])

    assert (result.outcome, result.status_code) == (outcome, status_code)


def test_http_500_is_unavailable_and_the_retry_goes_through(provider, emulator):
    set_outcomes(emulator, {"default": "http_500", "times": 1})

    with pytest.raises(ProviderUnavailableError) as failure:
        provider.send("Hello", [VODACOM])
    assert failure.value.status_code == 500
    assert not failure.value.outcome_unknown

    [result] = provider.send("Hello", [VODACOM])
    assert result.outcome is Outcome.ACCEPTED


def test_hang_past_the_timeout_is_unavailable_with_unknown_outcome(emulator):
    set_outcomes(emulator, {"default": {"outcome": "hang", "seconds": HANG_SECONDS}})
    provider = AfricasTalkingProvider(USERNAME, API_KEY, emulator.url, timeout=SHORT_TIMEOUT_SECONDS)

    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError) as failure:
        provider.send("Hello", [VODACOM])

    assert time.monotonic() - started < HANG_SECONDS
    assert failure.value.outcome_unknown  # the provider may well have taken it: a retry can duplicate


@pytest.mark.parametrize("api_key", ["wrong-key", ""])
def test_wrong_or_missing_api_key_is_rejected(emulator, api_key):
    emulator.state.configure(api_key=API_KEY)
    provider = AfricasTalkingProvider(USERNAME, api_key, emulator.url)

    with pytest.raises(ProviderRejectedError) as failure:
        provider.send("Hello", [VODACOM])

    assert failure.value.status_code == 401
    assert "The supplied authentication is invalid" in str(failure.value)
    assert recorded(emulator)["messages"] == []


def test_malformed_number_is_refused_without_sinking_the_batch(provider, emulator):
    good, bad = provider.send("Hello", [VODACOM, "26658000003"])

    assert good.outcome is Outcome.ACCEPTED
    assert (bad.outcome, bad.message_id) == (Outcome.PERMANENT, None)
    [call] = recorded(emulator)["requests"]
    assert call["form"]["to"] == VODACOM


def test_repeated_number_is_sent_once(provider, emulator):
    results = provider.send("Hello", [VODACOM, VODACOM])

    assert [result.phone for result in results] == [VODACOM]
    assert recorded(emulator)["requests"][0]["form"]["to"] == VODACOM


def test_no_numbers_means_no_call(provider, emulator):
    assert provider.send("Hello", []) == []
    assert recorded(emulator)["requests"] == []


def test_multi_part_text_reports_its_parts(provider):
    [result] = provider.send("a" * 161, [VODACOM])

    assert (result.parts, result.cost) == (2, "LSL 0.6000")


def test_from_settings_points_the_sdk_at_the_configured_origin(emulator):
    settings = load_settings(
        {},
        app_env="test",
        at_username=USERNAME,
        at_api_key=API_KEY,
        at_sender_id=SENDER_ID,
        at_api_base_url=emulator.url + "/",
    )
    provider = AfricasTalkingProvider.from_settings(settings)

    [result] = provider.send("Hello", [VODACOM])

    assert provider.base_url == f"{emulator.url}/version1"
    assert result.outcome is Outcome.ACCEPTED
    assert recorded(emulator)["requests"][0]["form"]["from"] == SENDER_ID


def test_logs_never_show_a_full_number(provider, emulator, caplog):
    set_outcomes(emulator, {"numbers": {VODACOM: "invalid_number"}})

    with caplog.at_level(logging.DEBUG, logger="notifications"):
        provider.send("Hello", [VODACOM, ECONET])

    assert "+266****0001" in caplog.text
    assert VODACOM not in caplog.text and ECONET not in caplog.text


# -- answers the emulator does not give: a loopback server that answers what the test scripts ---------------------


class ScriptedProvider:
    """A WSGI app that answers every call with one scripted status, content type and body."""

    def __init__(self, status=201, content_type="application/json", body=""):
        self.status, self.content_type, self.body = status, content_type, body

    def __call__(self, environ, start_response):
        Request(environ).get_data()
        return Response(self.body, status=self.status, content_type=self.content_type)(environ, start_response)


def scripted(wsgi_server, **answer):
    return AfricasTalkingProvider(USERNAME, API_KEY, wsgi_server(ScriptedProvider(**answer)))


def at_answer(message, recipients):
    return json.dumps({"SMSMessageData": {"Message": message, "Recipients": recipients}})


@pytest.mark.parametrize("status", [429, 502, 503])
def test_busy_or_broken_provider_is_unavailable(wsgi_server, status):
    with pytest.raises(ProviderUnavailableError) as failure:
        scripted(wsgi_server, status=status, content_type="text/plain", body="try later").send("Hello", [VODACOM])
    assert failure.value.status_code == status


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_are_rejected(wsgi_server, status):
    with pytest.raises(ProviderRejectedError) as failure:
        scripted(wsgi_server, status=status, content_type="text/plain", body="no").send("Hello", [VODACOM])
    assert failure.value.status_code == status


def test_success_without_json_is_unavailable_with_unknown_outcome(wsgi_server):
    provider = scripted(wsgi_server, status=200, content_type="text/html", body="<html>maintenance</html>")

    with pytest.raises(ProviderUnavailableError) as failure:
        provider.send("Hello", [VODACOM])

    assert failure.value.outcome_unknown
    assert "maintenance" in str(failure.value)


def test_json_with_a_charset_is_still_read(wsgi_server):
    body = at_answer("Sent to 1/1", [{"statusCode": 101, "number": VODACOM, "status": "Success", "messageId": "X1"}])
    provider = scripted(wsgi_server, content_type="application/json; charset=utf-8", body=body)

    [result] = provider.send("Hello", [VODACOM])

    assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "X1")


def test_success_without_message_id_is_not_accepted(wsgi_server):
    body = at_answer("Sent to 0/1", [{"statusCode": 101, "number": VODACOM, "status": "Success", "messageId": "None"}])

    [result] = scripted(wsgi_server, body=body).send("Hello", [VODACOM])

    assert (result.outcome, result.message_id) == (Outcome.RETRY, None)


def test_could_not_send_without_a_code_is_retried(wsgi_server):
    # The shape RapidPro saw from Africa's Talking: no statusCode, a free-text status, no message id.
    body = at_answer(
        "Sent to 0/1 Total Cost: 0",
        [{"number": VODACOM, "status": "Could Not Send", "cost": "0", "messageId": "None"}],
    )

    [result] = scripted(wsgi_server, body=body).send("Hello", [VODACOM])

    assert (result.outcome, result.status, result.status_code) == (Outcome.RETRY, "Could Not Send", None)


def test_numbers_missing_from_the_answer_are_retried_with_the_providers_reason(wsgi_server):
    body = at_answer(
        "Sent to 1/2",
        [{"statusCode": 101, "number": VODACOM.lstrip("+"), "status": "Success", "messageId": "X1"}],
    )

    vodacom, econet = scripted(wsgi_server, body=body).send("Hello", [VODACOM, ECONET])

    assert (vodacom.outcome, vodacom.message_id) == (Outcome.ACCEPTED, "X1")  # matched without its "+"
    assert econet.outcome is Outcome.RETRY
    assert "Sent to 1/2" in econet.error


def test_whole_batch_refused_inside_a_200_keeps_the_reason(wsgi_server):
    body = at_answer("InvalidSenderId", [])

    results = scripted(wsgi_server, body=body).send("Hello", [VODACOM, ECONET])

    assert {result.outcome for result in results} == {Outcome.RETRY}
    assert all("InvalidSenderId" in result.error for result in results)


def test_json_without_sms_data_is_unavailable(wsgi_server):
    with pytest.raises(ProviderUnavailableError) as failure:
        scripted(wsgi_server, body='{"error": "odd"}').send("Hello", [VODACOM])
    assert failure.value.outcome_unknown


def test_unreachable_provider_is_unavailable_and_nothing_was_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = AfricasTalkingProvider(USERNAME, API_KEY, f"http://127.0.0.1:{closed_port}")

    with pytest.raises(ProviderUnavailableError) as failure:
        provider.send("Hello", [VODACOM])

    assert failure.value.status_code is None
    assert not failure.value.outcome_unknown


def test_results_made_by_the_caller_say_why():
    result = RecipientResult.retry(VODACOM, "provider unavailable")

    assert (result.outcome, result.message_id, result.error, result.accepted) == (
        Outcome.RETRY,
        None,
        "provider unavailable",
        False,
    )
    assert RecipientResult.permanent(VODACOM, "x").outcome is Outcome.PERMANENT
    assert RecipientResult.no_credit(VODACOM, "x").outcome is Outcome.NO_CREDIT
