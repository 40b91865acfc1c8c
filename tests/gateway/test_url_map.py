"""Every console and API route refuses anonymous requests; every route that changes data refuses a viewer.

The test walks the application's real URL map, so a route added later without a guard fails here.
"""

from __future__ import annotations

import re

import pytest

from models.staff import StaffUser, issue_token
from tests.factories import STAFF_PASSWORD, make_staff

# Routes that must answer without a login: the login form, the provider's callbacks (guarded by WEBHOOK_TOKEN),
# Prometheus's scrape (guarded by METRICS_TOKEN when set; tests/gateway/test_metrics.py), the load balancer's health
# probes, and Flask's static files.
PUBLIC_ENDPOINTS = {"console.auth.login", "metrics.metrics", "static", "health.healthz", "health.readyz"}
PUBLIC_PREFIXES = ("webhooks.",)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SAMPLE_VALUES = {"int": "1", "string": "x", "path": "x", "default": "x"}


def concrete(rule) -> str:
    """A URL for `rule` with a made-up value for each variable."""

    def fill(match: re.Match) -> str:
        converter = match.group(1) or "default"
        return SAMPLE_VALUES.get(converter, "1")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", fill, rule.rule)


def guarded_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith(PUBLIC_PREFIXES):
            continue
        yield rule


def test_the_url_map_has_console_and_api_routes(app):
    endpoints = {rule.endpoint for rule in guarded_rules(app)}
    assert any(e.startswith("console.") for e in endpoints) and any(e.startswith("api.") for e in endpoints)


def test_every_console_and_api_route_refuses_anonymous_requests(app, client):
    checked = 0
    for rule in guarded_rules(app):
        url = concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, f"{method} {url} answered {response.status_code}"
                assert response.is_json
            else:
                # A console page sends the browser to the login form; a form post without a session is refused.
                assert response.status_code in (302, 400, 401, 403), f"{method} {url} answered {response.status_code}"
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"]
            checked += 1
    assert checked > 10


@pytest.fixture
def viewer_client(app, db):
    make_staff(db, "viewer@example.org", "viewer")
    client = app.test_client()
    response = client.post(
        "/login", data={"email": "viewer@example.org", "password": STAFF_PASSWORD, "csrf_token": _csrf(client)}
    )
    assert response.status_code == 302
    return client


def _csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return match.group(1) if match else ""


@pytest.fixture
def viewer_token(db):
    user_id = make_staff(db, "viewer-api@example.org", "viewer")
    with db.session() as session:
        _, token = issue_token(session, session.get(StaffUser, user_id), "test")
    return token


# What every staff member does to their own account, whatever the role.
OWN_ACCOUNT_ENDPOINTS = ("console.auth.logout", "console.auth.change_password")


def test_every_route_that_changes_data_refuses_a_viewer(app, viewer_client, viewer_token):
    token = _csrf(viewer_client) or _csrf_from_any_page(viewer_client)
    checked = 0
    for rule in guarded_rules(app):
        unsafe = (rule.methods or set()) & UNSAFE_METHODS
        if not unsafe or rule.endpoint in OWN_ACCOUNT_ENDPOINTS:
            continue
        url = concrete(rule)
        for method in sorted(unsafe):
            if rule.rule.startswith("/api/"):
                response = app.test_client().open(
                    url, method=method, json={}, headers={"Authorization": f"Bearer {viewer_token}"}
                )
            else:
                response = viewer_client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 403, f"viewer {method} {url} answered {response.status_code}"
            checked += 1
    assert checked > 5


def _csrf_from_any_page(client) -> str:
    page = client.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return match.group(1) if match else ""


def test_every_api_route_answers_an_error_as_json(make_app, tmp_path):
    """The API's error handler covers every API route: with the database out of reach, each answers a JSON 500."""
    app = make_app(database_url=f"sqlite:///{tmp_path}/missing/gateway.db")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer the 500 as production does, rather than raise it here
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        url = concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, json={}, headers={"Authorization": "Bearer not-checkable"})
            assert response.status_code == 500 and response.is_json, f"{method} {url}: {response.status_code}"
            assert response.get_json()["error"], f"{method} {url}"
            checked += 1
    assert checked > 10
