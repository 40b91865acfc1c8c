"""The OpenAPI document describes exactly the API's real routes, and is a valid OpenAPI 3 document in shape."""

from __future__ import annotations

import re

import pytest

from models.staff import StaffUser, issue_token
from tests.factories import make_staff

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def token(db):
    user_id = make_staff(db, "admin-api@example.org", "admin")
    with db.session() as session:
        _, plaintext = issue_token(session, session.get(StaffUser, user_id), "test")
    return plaintext


def openapi_path(rule: str) -> str:
    """`/api/v1/campaigns/<int:campaign_id>` -> `/api/v1/campaigns/{campaign_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_document_lists_every_api_route_and_nothing_else(app, client, token):
    response = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    real = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert described == real


def test_every_operation_has_responses_and_path_parameters_are_declared(app, client, token):
    document = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}).get_json()
    for path, operations in document["paths"].items():
        variables = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            assert operation.get("responses"), f"{method} {path} has no responses"
            assert "401" in operation["responses"], f"{method} {path} does not say it needs a token"
            declared = {
                p["name"]
                for p in operation.get("parameters", []) + operations.get("parameters", [])
                if p.get("in") == "path"
            }
            assert variables <= declared, f"{method} {path} does not declare {variables - declared}"


def test_the_document_needs_a_token(client):
    assert client.get("/api/v1/openapi.json").status_code == 401
