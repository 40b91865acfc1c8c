"""Real worker processes against the emulator: killed workers and a restarted Redis lose and double nothing.

These start `flask --app wsgi worker` as a child process, exactly as an operator would, and serve the gateway
over HTTP so that the emulator's delivery reports reach it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config.redis import connect
from config.settings import PROJECT_ROOT
from models.grants import find_grant_by_reference
from models.messages import ACCEPTED_MESSAGE_STATUSES, MessageKind, OutboundMessage
from models.people import get_or_create_contact
from notifications.casework.grants import change_grant_status
from notifications.sms.outbox import owe_text
from notifications.sms.queues import kick
from tests.factories import next_phone, register
from tests.servers import free_port, start_redis

WAIT_SECONDS = 40

pytestmark = pytest.mark.slow


def worker_env(settings, emulator_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        APP_ENV="test",
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        AT_API_BASE_URL=emulator_url,
        AT_API_KEY="test-key",
        SMS_RATE_PER_SECOND="25",
        SMS_BATCH_SIZE="5",
        SMS_RETRY_BACKOFF_SECONDS="0,1,1,2",
        SMS_CLAIM_TIMEOUT_SECONDS="2",
        # A worker killed between noting a call and making it leaves rows no report will ever settle: after this
        # long they are sent again (the emulator reports within 0.1 s on everything it takes).
        SMS_UNKNOWN_OUTCOME_SECONDS="4",
        SWEEP_INTERVAL_SECONDS="0.5",
        LOG_LEVEL=os.environ.get("WORKER_LOG_LEVEL", "WARNING"),
    )
    return env


def start_worker(env, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", *options],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,  # its own process group: SIGKILL reaches the work horse too
        stdout=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)


def wait_until(condition, seconds=WAIT_SECONDS, interval=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def accepted_count(db) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.status.in_(ACCEPTED_MESSAGE_STATUSES))
        )


def left_behind(db) -> list[tuple]:
    """What the rows that never reached the provider look like: for a failure message."""
    with db.session() as session:
        rows = session.execute(
            select(
                OutboundMessage.id, OutboundMessage.status, OutboundMessage.attempts, OutboundMessage.last_error
            ).where(OutboundMessage.status.not_in(ACCEPTED_MESSAGE_STATUSES))
        ).all()
    return [tuple(row) for row in rows]


@pytest.fixture
def gateway_url(make_app, wsgi_server, emulator):
    """The gateway over HTTP; the emulator posts its delivery reports here."""
    url = wsgi_server(make_app())
    emulator.state.configure(delivery_report_url=f"{url}/webhooks/at/sms/delivery", report_delay=0.1)
    return url


def test_a_worker_killed_mid_batch_and_a_new_worker_send_everything_exactly_once(
    db, redis, redis_url, settings, emulator, gateway_url
):
    phones = [next_phone() for _ in range(60)]
    with db.session() as session:
        for index, phone in enumerate(phones):
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Group {index // 5} notice")
    env = worker_env(settings, emulator.url, redis_url)
    first = start_worker(env)
    try:
        kick(redis, "transactional")
        assert wait_until(lambda: len(emulator.state.snapshot()["messages"]) >= 15, interval=0.01)
        stop(first, signal.SIGKILL)
        killed_after = len(emulator.state.snapshot()["messages"])
        assert killed_after < 60, "the worker finished before it could be killed; raise the message count"
        second = start_worker(env)
        try:
            received = len(emulator.state.snapshot()["messages"])
            assert wait_until(lambda: accepted_count(db) == 60), (
                f"only {accepted_count(db)} of 60 accepted, {received} received: {left_behind(db)}"
            )
        finally:
            stop(second)
    finally:
        stop(first, signal.SIGKILL)
    received = Counter(message["phone"] for message in emulator.state.snapshot()["messages"])
    assert received == Counter(phones)  # every message once, none twice


def test_a_worker_serves_its_own_healthz_and_metrics_on_the_metrics_port(db, redis_url, settings, emulator):
    port = free_port()
    worker = start_worker(
        worker_env(settings, emulator.url, redis_url), "--metrics-port", str(port), "--metrics-host", "127.0.0.1"
    )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return response.status == 200 and json.loads(response.read()) == {"status": "ok"}
        except OSError:
            return False

    try:
        assert wait_until(healthy)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            page = response.read().decode()
        assert "# TYPE gateway_sms_provider_call" in page  # this process's registry, served beside /healthz
    finally:
        stop(worker)
    assert not healthy()


def test_notices_survive_a_redis_restart_between_the_grant_change_and_the_send(
    db, settings, emulator, gateway_url, tmp_path
):
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    server = start_redis(port, tmp_path)
    env = worker_env(settings, emulator.url, redis_url)
    (first_reference, first_phone), (second_reference, second_phone) = register(db), register(db)
    try:
        with db.session() as session:  # the first notice's job reaches Redis, which then loses it
            grant = find_grant_by_reference(session, first_reference)
            change_grant_status(session, grant, "under_review", actor="officer")
            change_grant_status(session, grant, "approved", actor="officer", amount=Decimal("1500"))
        assert kick(connect(redis_url), "transactional")
        server.kill()
        server.wait()
        with db.session() as session:  # the second notice commits while Redis is down
            grant = find_grant_by_reference(session, second_reference)
            change_grant_status(session, grant, "under_review", actor="officer")
            change_grant_status(session, grant, "not_eligible", actor="officer", reason="not a returnee")
        assert not kick(connect(redis_url), "transactional")
        server = start_redis(port, tmp_path)  # back, and empty
        worker = start_worker(env)
        try:
            assert wait_until(lambda: len(emulator.state.snapshot()["messages"]) == 2)
            assert wait_until(lambda: accepted_count(db) == 2)
            time.sleep(1.5)  # a few sweeps more: still nothing doubled
        finally:
            stop(worker)
    finally:
        server.kill()
        server.wait()
    received = Counter(message["phone"] for message in emulator.state.snapshot()["messages"])
    assert received == Counter([first_phone, second_phone])


def test_a_worker_rides_out_a_redis_restart_in_the_middle_of_a_job(db, settings, emulator, gateway_url, tmp_path):
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    server = start_redis(port, tmp_path)
    phones = [next_phone() for _ in range(100)]
    with db.session() as session:
        for index, phone in enumerate(phones):
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Notice {index}")
    worker = start_worker(worker_env(settings, emulator.url, redis_url))
    try:
        assert wait_until(lambda: len(emulator.state.snapshot()["messages"]) >= 10, interval=0.01)
        server.kill()  # mid-job: the drain slice is sending at 25/s
        server.wait()
        time.sleep(2)
        server = start_redis(port, tmp_path)  # back, and empty: the sweep re-enqueues what is owed
        assert wait_until(lambda: accepted_count(db) == 100), f"only {accepted_count(db)} of 100 accepted"
        assert worker.poll() is None, "the worker process ended when Redis went away"
    finally:
        try:
            stop(worker)
        finally:
            server.kill()
            server.wait()
    assert Counter(message["phone"] for message in emulator.state.snapshot()["messages"]) == Counter(phones)
