"""GET /metrics: what the gateway counts, what it reads at scrape time, the token, and gunicorn's workers summed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from config.settings import PROJECT_ROOT
from models.messages import MessageKind
from models.people import get_or_create_contact
from notifications.sms.outbox import owe_text
from notifications.sms.queues import PAUSED_KEY
from tests.factories import next_phone
from tests.gateway.test_auth import login
from tests.gateway.test_ussd_webhook import USSD, hop
from tests.servers import free_port

GUNICORN_START_SECONDS = 60
# A replaced gunicorn worker imports the app again: seconds on a busy machine, while requests wait for it.
REQUEST_TIMEOUT_SECONDS = 60
# Each gunicorn worker serves this many requests and is replaced: the hops are spread over several processes.
REQUESTS_PER_WORKER = 4


def value(page: str, name: str, **labels) -> float:
    """The sample `name{labels}` of a metrics page; 0 when absent (a labelled counter not yet used)."""
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == wanted for key, wanted in labels.items()):
                return sample.value
    return 0.0


def scrape(client, **headers) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_a_hop_is_counted_by_screen_kind_and_outcome_with_its_latency(client):
    before = scrape(client)
    hop(client, session_id="metrics-1", phone=next_phone())  # a new session: the language screen, CON
    after = scrape(client)
    answered_con = {"screen": "CON", "outcome": "answered"}
    assert (
        value(after, "gateway_ussd_hops_total", **answered_con)
        == value(before, "gateway_ussd_hops_total", **answered_con) + 1
    )
    assert value(after, "gateway_ussd_hop_seconds_count") == value(before, "gateway_ussd_hop_seconds_count") + 1
    assert (
        value(after, "gateway_ussd_sessions_started_total") == value(before, "gateway_ussd_sessions_started_total") + 1
    )
    assert "+266" not in after  # no phone number in any label


def test_refused_webhooks_and_logins_are_counted_by_reason(make_app, db, redis):
    client = make_app(webhook_token="t" * 40).test_client()
    before = scrape(client)
    assert client.post(USSD, data={"sessionId": "x"}).status_code == 403
    assert login(client, "nobody@example.org", "wrong").status_code in (200, 400, 401)
    after = scrape(client)
    assert value(after, "gateway_webhook_refusals_total", reason="token") == (
        value(before, "gateway_webhook_refusals_total", reason="token") + 1
    )
    assert value(after, "gateway_login_failures_total", reason="unknown_email") == (
        value(before, "gateway_login_failures_total", reason="unknown_email") + 1
    )


def test_the_backlog_is_read_at_scrape_time(client, db, redis):
    with db.session() as session:
        owe_text(session, get_or_create_contact(session, next_phone()), MessageKind.STAFF, "Your grant is approved.")
    time.sleep(1.1)
    redis.set(PAUSED_KEY, "sms_no_credit")
    page = scrape(client)
    assert value(page, "gateway_sms_waiting_messages", priority="transactional") == 1
    assert value(page, "gateway_sms_waiting_messages", priority="bulk") == 0
    assert value(page, "gateway_sms_oldest_waiting_seconds", priority="transactional") >= 1
    assert value(page, "gateway_sms_sending_paused", reason="sms_no_credit") == 1
    assert value(page, "gateway_sms_sending_paused", reason="sms_credentials") == 0
    assert value(page, "gateway_rq_workers") == 0
    assert value(page, "gateway_sms_breaker_open", route="africastalking") == 0
    assert value(page, "gateway_backlog_read_ok", part="database") == 1
    assert value(page, "gateway_backlog_read_ok", part="redis") == 1


def test_metrics_token_guards_the_page_when_set(make_app, db, redis):
    client = make_app(metrics_token="m" * 32).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "gateway_ussd_hops" in scrape(client, Authorization="Bearer " + "m" * 32)


@pytest.mark.slow
def test_under_gunicorn_one_scrape_adds_up_every_worker(settings, db, redis_url, tmp_path):
    """Two gunicorn workers, each replaced after a few requests: the page still counts every hop once."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    conf = tmp_path / "gunicorn_test.py"
    conf.write_text(
        "from config.metrics import clear_multiprocess_dir, gunicorn_child_exit as child_exit\n"
        "def on_starting(server):\n    clear_multiprocess_dir()\n"
    )
    port = free_port()
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(conf),
            "--workers",
            "2",
            "--max-requests",
            str(REQUESTS_PER_WORKER),
        ]
        + ["--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + GUNICORN_START_SECONDS
        while True:
            try:
                requests.get(f"{url}/metrics", timeout=REQUEST_TIMEOUT_SECONDS)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        hops = 12
        for index in range(hops):
            form = {"sessionId": f"gunicorn-{index}", "serviceCode": "*1#", "phoneNumber": next_phone(), "text": ""}
            assert requests.post(f"{url}{USSD}", data=form, timeout=REQUEST_TIMEOUT_SECONDS).text.startswith("CON")
        page = requests.get(f"{url}/metrics", timeout=REQUEST_TIMEOUT_SECONDS).text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert value(page, "gateway_ussd_hops_total", screen="CON", outcome="answered") == hops
    assert value(page, "gateway_ussd_hop_seconds_count") == hops
    assert len({path.name.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}) > 2  # many processes
