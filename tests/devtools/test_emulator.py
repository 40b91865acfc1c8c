"""The provider emulator over real HTTP: its answers, its scripted outcomes, its inbox and its delivery reports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

from config.settings import PROJECT_ROOT
from devtools.devserver import emulator_options

API_KEY = "test-api-key"
VODACOM = "+26658000001"
ECONET = "+26662000002"
SOUTH_AFRICA = "+27821234567"
REPORT_DELAY_SECONDS = 0.3
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.02
DELIVERY_PATH = "/webhooks/at/sms/delivery"


def send(emulator, to, message="Dumela", api_key=API_KEY, **fields):
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["apiKey"] = api_key
    form = {"username": "sandbox", "to": to, "message": message, "bulkSMSMode": "1", **fields}
    return requests.post(f"{emulator.url}/version1/messaging", data=form, headers=headers, timeout=WAIT_SECONDS)


def set_outcomes(emulator, spec):
    return requests.post(f"{emulator.url}/_emulator/outcomes", json=spec, timeout=WAIT_SECONDS)


def recipients(answer):
    return answer.json()["SMSMessageData"]["Recipients"]


def recorded_reports(emulator, count):
    """The emulator's log of report attempts, once it holds `count` of them (it writes each after the answer)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        reports = requests.get(f"{emulator.url}/_emulator/messages", timeout=WAIT_SECONDS).json()["reports"]
        if len(reports) >= count or time.monotonic() > deadline:
            return reports
        time.sleep(POLL_SECONDS)


class ReportReceiver:
    """The gateway's side of delivery reports: records every form it gets; can fail the first few on purpose."""

    def __init__(self, failures=0):
        self.forms: list[dict] = []
        self.query: list[dict] = []
        self.times: list[float] = []
        self.failures = failures
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            if self.failures:
                self.failures -= 1
                return Response("down", status=503)(environ, start_response)
            self.forms.append(request.form.to_dict())
            self.query.append(request.args.to_dict())
            self.times.append(time.monotonic())
        return Response("ok")(environ, start_response)

    def wait_for(self, count):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.forms) >= count:
                    return list(self.forms)
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"expected {count} delivery reports, got {self.forms}")


@pytest.fixture
def receiver(emulator, wsgi_server):
    receiver = ReportReceiver()
    url = wsgi_server(receiver)
    emulator.state.configure(
        delivery_report_url=f"{url}{DELIVERY_PATH}?token=s3cret", report_delay=REPORT_DELAY_SECONDS
    )
    return receiver


def test_send_answer_looks_like_the_providers(emulator):
    answer = send(emulator, f"{VODACOM}, {ECONET}")

    assert answer.status_code == 201
    assert answer.headers["Content-Type"] == "application/json"  # the SDK parses nothing else
    data = answer.json()["SMSMessageData"]
    assert data["Message"] == "Sent to 2/2 Total Cost: LSL 0.6000"
    assert [(r["statusCode"], r["number"], r["status"], r["cost"], r["messageParts"]) for r in data["Recipients"]] == [
        (101, VODACOM, "Success", "LSL 0.3000", 1),
        (101, ECONET, "Success", "LSL 0.3000", 1),
    ]
    assert all(r["messageId"].startswith("ATXid_") and len(r["messageId"]) == 6 + 32 for r in data["Recipients"])


def test_parts_follow_the_encoding(emulator):
    [recipient] = recipients(send(emulator, VODACOM, message="ā" * 71))
    assert (recipient["messageParts"], recipient["cost"]) == (2, "LSL 0.6000")


def test_missing_api_key_is_refused_as_the_provider_does(emulator):
    answer = send(emulator, VODACOM, api_key=None)

    assert answer.status_code == 401
    assert answer.text == "The supplied authentication is invalid"


def test_configured_api_key_must_match(emulator):
    emulator.state.configure(api_key=API_KEY)

    assert send(emulator, VODACOM, api_key="other").status_code == 401
    assert send(emulator, VODACOM).status_code == 201


@pytest.mark.parametrize("missing", ["to", "message"])
def test_missing_recipients_or_text_is_a_bad_request(emulator, missing):
    answer = send(emulator, **{"to": VODACOM, "message": "Hello", missing: ""})
    assert answer.status_code == 400
    assert missing in answer.text


def test_malformed_number_is_an_invalid_phone_number(emulator):
    bad, good = recipients(send(emulator, f"058000001,{VODACOM}"))

    assert (bad["statusCode"], bad["status"], bad["messageId"], bad["cost"]) == (403, "InvalidPhoneNumber", "None", "0")
    assert good["statusCode"] == 101


def test_outcomes_per_number(emulator):
    set_outcomes(emulator, {"numbers": {VODACOM: "invalid_number", ECONET: "insufficient_balance"}})

    vodacom, econet, south_africa = recipients(send(emulator, f"{VODACOM},{ECONET},{SOUTH_AFRICA}"))

    assert (vodacom["statusCode"], vodacom["status"], vodacom["messageId"]) == (403, "InvalidPhoneNumber", "None")
    assert (econet["statusCode"], econet["status"], econet["messageId"]) == (405, "InsufficientBalance", "None")
    assert south_africa["statusCode"] == 101
    messages = requests.get(f"{emulator.url}/_emulator/messages", timeout=WAIT_SECONDS).json()["messages"]
    assert [message["phone"] for message in messages] == [SOUTH_AFRICA]


def test_default_outcome_with_times_returns_to_delivered(emulator):
    set_outcomes(emulator, {"default": "http_500", "times": 2})

    assert [send(emulator, VODACOM).status_code for _ in range(3)] == [500, 500, 201]


def test_number_rule_with_times_counts_recipients(emulator):
    set_outcomes(emulator, {"numbers": {VODACOM: {"outcome": "invalid_number", "times": 1}}})

    first = recipients(send(emulator, VODACOM))
    second = recipients(send(emulator, VODACOM))

    assert [first[0]["statusCode"], second[0]["statusCode"]] == [403, 101]
    assert requests.get(f"{emulator.url}/_emulator/outcomes", timeout=WAIT_SECONDS).json()["numbers"] == {}


def test_one_failing_number_fails_the_whole_call(emulator):
    set_outcomes(emulator, {"numbers": {ECONET: "http_500"}})

    assert send(emulator, f"{VODACOM},{ECONET}").status_code == 500
    assert send(emulator, VODACOM).status_code == 201


def test_hang_answers_late_and_keeps_the_messages(emulator):
    set_outcomes(emulator, {"default": {"outcome": "hang", "seconds": 0.3, "times": 1}})

    started = time.monotonic()
    answer = send(emulator, VODACOM)

    assert time.monotonic() - started >= 0.3
    assert recipients(answer)[0]["statusCode"] == 101
    assert send(emulator, VODACOM).elapsed.total_seconds() < 0.3


def configure(emulator, **changes):
    answer = requests.post(f"{emulator.url}/_emulator/config", json=changes, timeout=WAIT_SECONDS)
    answer.raise_for_status()
    return answer.json()


def concurrently(emulator, count):
    """`count` calls at once, each from its own thread; their answers and how long each took."""
    answers: list = [None] * count

    def call(index):
        answers[index] = send(emulator, f"+2665800{index:04d}", f"Notice {index}")

    threads = [threading.Thread(target=call, args=(index,)) for index in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, time.monotonic() - started


def test_latency_delays_every_call_and_calls_are_answered_concurrently(emulator):
    assert configure(emulator, latency=0.3, jitter=0.05)["latency"] == 0.3

    answers, seconds = concurrently(emulator, 8)

    assert [answer.status_code for answer in answers] == [201] * 8
    assert all(answer.elapsed.total_seconds() >= 0.25 for answer in answers)
    assert seconds < 0.3 * 2  # eight calls one after the other would take 2.4 s
    arrivals = [
        entry["at"] for entry in requests.get(f"{emulator.url}/_emulator/messages", timeout=5).json()["requests"]
    ]
    assert len(arrivals) == 8 and max(arrivals) - min(arrivals) < 0.3


def test_calls_beyond_the_in_flight_limit_are_answered_429_and_take_nothing(emulator):
    configure(emulator, latency=0.4, max_in_flight=3)

    answers, _ = concurrently(emulator, 6)

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201, 201, 201, 429, 429, 429]
    assert all(answer.elapsed.total_seconds() < 0.3 for answer in answers if answer.status_code == 429)
    recorded = requests.get(f"{emulator.url}/_emulator/messages", timeout=5).json()
    assert len(recorded["messages"]) == 3
    assert sorted(entry["http_status"] for entry in recorded["requests"]) == codes
    configure(emulator, max_in_flight=None)
    assert send(emulator, VODACOM).status_code == 201


def test_calls_beyond_the_rate_limit_are_answered_429_until_the_second_has_passed(emulator):
    configure(emulator, max_calls_per_second=3)

    codes = [send(emulator, VODACOM).status_code for _ in range(5)]
    time.sleep(1.05)

    assert codes == [201, 201, 201, 429, 429]
    assert send(emulator, VODACOM).status_code == 201


def test_unknown_outcome_is_refused(emulator):
    answer = set_outcomes(emulator, {"default": "lost_in_space"})

    assert answer.status_code == 400
    assert "lost_in_space" in answer.text


def test_reset_forgets_messages_and_rules(emulator):
    set_outcomes(emulator, {"default": "insufficient_balance", "numbers": {VODACOM: "invalid_number"}})
    send(emulator, VODACOM)

    assert requests.post(f"{emulator.url}/_emulator/reset", timeout=WAIT_SECONDS).status_code == 200

    assert requests.get(f"{emulator.url}/_emulator/messages", timeout=WAIT_SECONDS).json() == {
        "requests": [],
        "messages": [],
        "reports": [],
    }
    assert recipients(send(emulator, f"{VODACOM},{ECONET}"))[0]["statusCode"] == 101


def test_inbox_page_shows_the_numbers_messages(emulator):
    send(emulator, VODACOM, message="Dumela <Thabo> & welcome", **{"from": "RETURNEES"})
    send(emulator, ECONET, message="Not for Thabo")

    page = requests.get(f"{emulator.url}/inbox/{VODACOM}", timeout=WAIT_SECONDS)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Dumela &lt;Thabo&gt; &amp; welcome" in page.text
    assert "RETURNEES" in page.text
    assert "Not for Thabo" not in page.text
    assert "Dumela &lt;Thabo&gt;" in requests.get(f"{emulator.url}/inbox/26658000001", timeout=WAIT_SECONDS).text
    assert f'href="/inbox/{ECONET}"' in requests.get(f"{emulator.url}/", timeout=WAIT_SECONDS).text


def test_delivery_reports_are_posted_after_the_delay(emulator, receiver):
    set_outcomes(
        emulator,
        {"numbers": {ECONET: {"outcome": "failed", "failure_reason": "UserIsInactive"}, SOUTH_AFRICA: "rejected"}},
    )
    sent_at = time.monotonic()
    ids = [r["messageId"] for r in recipients(send(emulator, f"{VODACOM},{ECONET},{SOUTH_AFRICA}"))]

    forms = sorted(receiver.wait_for(3), key=lambda form: ids.index(form["id"]))

    assert min(receiver.times) - sent_at >= REPORT_DELAY_SECONDS
    assert forms == [
        {"id": ids[0], "status": "Success", "phoneNumber": VODACOM, "networkCode": "65101", "retryCount": "0"},
        {
            "id": ids[1],
            "status": "Failed",
            "phoneNumber": ECONET,
            "networkCode": "65102",
            "retryCount": "0",
            "failureReason": "UserIsInactive",
        },
        {
            "id": ids[2],
            "status": "Rejected",
            "phoneNumber": SOUTH_AFRICA,
            "networkCode": "99999",
            "retryCount": "0",
            "failureReason": "DoNotDisturbRejection",
        },
    ]
    assert receiver.query == [{"token": "s3cret"}] * 3


def test_no_delivery_report_for_numbers_the_provider_refused(emulator, receiver):
    set_outcomes(emulator, {"numbers": {ECONET: "invalid_number"}})

    send(emulator, f"{VODACOM},{ECONET}")

    [form] = receiver.wait_for(1)
    time.sleep(REPORT_DELAY_SECONDS)
    assert form["phoneNumber"] == VODACOM and len(receiver.forms) == 1


def test_failed_report_post_is_retried(emulator, receiver):
    receiver.failures = 1

    [message_id] = [r["messageId"] for r in recipients(send(emulator, VODACOM))]

    [form] = receiver.wait_for(1)
    assert form["id"] == message_id
    assert [(report["attempt"], report["http_status"]) for report in recorded_reports(emulator, 2)] == [
        (1, 503),
        (2, 200),
    ]


def test_runs_as_its_own_process(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.emulator",
            "--port",
            str(port),
            "--report-delay",
            "0.1",
            "--latency",
            "0.2",
            "--jitter",
            "0.01",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                requests.get(f"{url}/_emulator/messages", timeout=WAIT_SECONDS)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(POLL_SECONDS * 5)
        answer = requests.post(
            f"{url}/version1/messaging", data={"to": VODACOM, "message": "Hi"}, headers={"apiKey": "k"}, timeout=5
        )
        assert answer.status_code == 201
        assert answer.elapsed.total_seconds() >= 0.19
    finally:
        process.terminate()
        process.wait(timeout=WAIT_SECONDS)


def test_make_dev_passes_the_emulator_settings_on():
    env = {"EMULATOR_LATENCY": "0.15", "EMULATOR_JITTER": " 0.05 ", "EMULATOR_MAX_IN_FLIGHT": ""}

    assert emulator_options(env) == ["--latency", "0.15", "--jitter", "0.05"]
