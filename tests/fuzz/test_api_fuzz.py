"""The staff API fuzzed from its own OpenAPI description (schemathesis): whatever a client sends, with a real
token, the answer is never a 5xx, never a stack trace, and every refusal is JSON with a reason."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from models.staff import StaffUser, issue_token
from tests.factories import make_staff, register
from tests.gateway.test_api_beneficiaries import bearer

# Examples per API operation: enough to find a crash in every parser, few enough for the normal test run.
EXAMPLES_PER_OPERATION = 12
# The document describes at least /me, the beneficiaries, their grants, messages and campaigns.
MIN_OPERATIONS = 5
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy.", "werkzeug.exceptions")


@pytest.fixture
def api_token(db) -> str:
    """An admin's real bearer token, so that the fuzzer reaches past authentication into every handler."""
    make_staff(db, "fuzz@example.org", "admin")
    register(db)
    with db.session() as session:
        user = session.execute(select(StaffUser).filter_by(email="fuzz@example.org")).scalar_one()
        _, token = issue_token(session, user, "fuzz")
    return token


def test_the_api_never_fails_whatever_it_is_sent(app, api_token):
    """Every operation of the document, each with its own bounded run of generated requests.

    The schema is loaded inside the test rather than with `schemathesis.pytest.from_fixture`, whose per-operation
    node ids rely on a pytest internal that pytest 9 removed.
    """
    headers = {"Authorization": f"Bearer {api_token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= MIN_OPERATIONS
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def never_fails(case):
            response = case.call(headers=headers)
            body = response.text
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {body}"
            assert not any(marker in body for marker in TRACE_MARKERS), body
            if response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/json"), body
                assert response.json()["error"], body

        never_fails()


def test_api_pages_and_ids_past_the_database_integers_are_refused(client, db):
    from_api = client.get("/api/v1/campaigns?page=184467440737095518", headers=bearer(db))
    assert from_api.status_code == 400 and "page" in from_api.get_json()["error"]
    missing = client.get("/api/v1/campaigns/99999999999999999999", headers=bearer(db, email="second@example.org"))
    assert missing.status_code == 404 and missing.get_json()["error"]


def test_a_nul_character_anywhere_is_a_400_with_a_reason(client, db):
    headers = bearer(db)
    sent = client.post("/api/v1/campaigns", json={"name": "x", "text_en": "x", "text_st": "\u0000"}, headers=headers)
    assert sent.status_code == 400 and "NUL" in sent.get_json()["error"]
    searched = client.get("/api/v1/beneficiaries?q=a%00b", headers=headers)
    assert searched.status_code == 400 and "NUL" in searched.get_json()["error"]
    console = client.get("/login?next=%00")
    assert console.status_code == 400 and console.mimetype == "text/plain"
