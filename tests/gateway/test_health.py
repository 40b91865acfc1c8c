"""`/healthz` and `/readyz` for the load balancer, and the worker's own `/healthz`."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from ipaddress import ip_network

import pytest
from alembic.script import ScriptDirectory

from models.migrate import alembic_config, head_revisions, upgrade
from notifications.sms.worker_http import WorkerEndpoints, liveness
from tests.servers import free_port

# The brief a load balancer gets: an answer within this many seconds, even from a hung Redis.
READYZ_BOUND_SECONDS = 2.0
WEBHOOK_TOKEN = "t" * 40


@pytest.fixture
def hanging_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers a byte (a hung Redis, a half-dead proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def guarded_app(make_app, **changes):
    """An app with a webhook token and a webhook allow-list that excludes the test client."""
    return make_app(
        webhook_token=WEBHOOK_TOKEN, webhook_allowed_networks=(ip_network("192.0.2.0/24"),), **changes
    ).test_client()


def test_healthz_answers_without_a_token_and_without_touching_redis_or_the_database(make_app, db):
    client = guarded_app(make_app, redis_url="redis://127.0.0.1:1/0", database_url="postgresql+psycopg://127.0.0.1:1/x")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_is_at_head_and_redis_answers(make_app, db, redis):
    response = guarded_app(make_app).get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "migrations": "ok", "redis": "ok"}
    body = response.get_data(as_text=True)
    assert not any(revision in body for revision in head_revisions())  # no versions revealed


def test_readyz_names_redis_within_two_seconds_when_redis_hangs(make_app, db, hanging_listener):
    client = guarded_app(make_app, redis_url=f"redis://127.0.0.1:{hanging_listener}/0")
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < READYZ_BOUND_SECONDS
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "database": "ok", "migrations": "ok", "redis": "unreachable"}
    assert str(hanging_listener) not in response.get_data(as_text=True)


def test_readyz_names_the_database_when_it_is_down(make_app, redis):
    client = guarded_app(make_app, database_url=f"postgresql+psycopg://127.0.0.1:{free_port()}/gateway")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable" and response.get_json()["redis"] == "ok"


def test_readyz_names_the_migrations_when_the_database_is_behind_the_code(make_app, redis, tmp_path):
    (head,) = head_revisions()
    previous = ScriptDirectory.from_config(alembic_config("")).get_revision(head).down_revision
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    upgrade(url, previous)
    client = guarded_app(make_app, database_url=url)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "database": "ok", "migrations": "not at head", "redis": "ok"}
    upgrade(url)
    assert client.get("/readyz").status_code == 200


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}") if error.code != 404 else {}


def test_the_worker_endpoints_say_whether_the_worker_threads_run():
    running = threading.Event()
    sweeper = threading.Thread(target=running.wait, name="outbox-sweeper", daemon=True)
    sweeper.start()
    endpoints = WorkerEndpoints({"/healthz": lambda: liveness(sweeper)}, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{endpoints.port}"
        assert _get(f"{base}/healthz") == (200, {"status": "ok"})
        assert _get(f"{base}/other")[0] == 404
        running.set()
        sweeper.join()
        assert _get(f"{base}/healthz") == (503, {"status": "stopped", "threads": ["outbox-sweeper"]})
    finally:
        endpoints.stop()
