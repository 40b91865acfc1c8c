"""Fixtures: a real Redis, a real database (SQLite, and PostgreSQL when reachable), the app and its client.

- Redis: `REDIS_URL` when set (CI points it at a spare database of the machine's server), else an embedded server
  started for the test run. Flushed before every test.
- Databases: every test that uses `db` runs once per backend. PostgreSQL is `TEST_POSTGRES_URL` (default: the
  local server, trust auth); each run creates its own database and drops it at the end. When PostgreSQL is not
  reachable its runs are skipped, unless `REQUIRE_POSTGRES=1` (CI), which makes that a failure.
- Schemas are built by the Alembic migrations, so the migrations are tested by every run.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from config import load_settings
from config.redis import connect, ensure_embedded_redis
from devtools.emulator import SERVE_POLL_SECONDS, EmulatorServer, EmulatorState
from models import Base, Database
from models.crypto import current_keys, install_data_keys
from models.migrate import upgrade
from notifications.sms.number_limits import NumberLimits

# The tests choose their environment: a process without APP_ENV is production (config.settings), and code that
# reads its settings from the environment (models.crypto's keys, worker subprocesses) must see the test one.
os.environ.setdefault("APP_ENV", "test")

LOOPBACK = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"


def _postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return url
    except sa.exc.OperationalError as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            raise RuntimeError(f"REQUIRE_POSTGRES=1 but PostgreSQL at {url} is not reachable: {exc}") from exc
        return None


_POSTGRES_ADMIN_URL = _postgres_admin_url()


@pytest.fixture(autouse=True)
def _data_keys_restored():
    """An app built with other data keys installs them for the process (models.crypto); put the usual ones back."""
    before = current_keys()
    yield
    install_data_keys(before)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    return os.environ.get("REDIS_URL") or ensure_embedded_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def redis(redis_url):
    client = connect(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        upgrade(url)
        yield url
        return
    if _POSTGRES_ADMIN_URL is None:
        pytest.skip("PostgreSQL not reachable (set TEST_POSTGRES_URL, or REQUIRE_POSTGRES=1 to fail instead)")
    name = f"gateway_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(_POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(database_url):
    """A `models.Database` on a migrated schema; every table is emptied after the test."""
    database = Database(database_url)
    yield database
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    database.dispose()


@pytest.fixture
def settings(database_url, redis_url):
    return load_settings({}, app_env="test", database_url=database_url, redis_url=redis_url, secret_key="test")


@pytest.fixture
def limits(redis, settings) -> NumberLimits:
    """The per-number SMS and call-back limits on the test's Redis, for tests that call `receive_sms` directly."""
    return NumberLimits(redis, settings)


@pytest.fixture
def make_app(settings):
    """`make_app(**changes)`: an app on the test's settings with `changes`; its connections close after the test."""
    from gateway import create_app

    made = []

    def make(**changes):
        fields = ("app_env", "database_url", "redis_url", "secret_key")
        application = create_app({**{field: getattr(settings, field) for field in fields}, **changes})
        made.append(application)
        return application

    yield make
    for application in made:
        services = application.extensions["gateway"]
        services.db.dispose()
        if "redis" in services.__dict__:
            services.redis.close()


@pytest.fixture
def app(make_app, db, redis):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The provider emulator on a free loopback port; `emulator.url` is the `AT_API_BASE_URL` to use.

    It accepts any non-empty API key; a test that needs a specific one sets `emulator.state.configure(api_key=...)`.
    """
    server = EmulatorServer(EmulatorState(), host=LOOPBACK, port=0).start()
    yield server
    server.stop()


@pytest.fixture
def wsgi_server() -> Iterator[Callable]:
    """Serve any WSGI app on a free loopback port: `url = wsgi_server(app)`. Stopped after the test.

    For the other side of a conversation: a delivery-report receiver, or a provider that answers what a test wants.
    """
    running = []

    def serve(app) -> str:
        server = make_server(LOOPBACK, 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL_SECONDS,), daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://{LOOPBACK}:{server.server_port}"

    yield serve
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()
