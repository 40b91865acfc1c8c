"""The OpenAPI 3 description of /api/v1, assembled from the `OPENAPI_PATHS` of each module that serves its routes.

Each API module describes its own routes next to their code, so a route and its description change together;
`tests/gateway/test_openapi.py` checks the document against the application's real URL map.
"""

from __future__ import annotations

import inspect

from flask import Blueprint, Response, current_app

from gateway.api.errors import API_PREFIX
from gateway.auth import token_required

OPENAPI_VERSION = "3.0.3"
API_TITLE = "Returnee services gateway: staff API"
API_VERSION = "1"

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
# A response body in the API's error shape, for the modules' own responses.
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def json_body(schema: dict) -> dict:
    """The `requestBody` of an operation that takes one JSON object of `schema` (every write operation does)."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# This module's own route.
OPENAPI_PATHS = {
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI 3 description of the staff API"}},
        }
    }
}


def openapi_document() -> dict:
    """The whole document: every module's paths under /api/v1, bearer authentication on every operation.

    The modules are those whose views the application serves under /api/v1, found in its URL map: a module added
    to the API is described without a list to keep up to date.
    """
    paths: dict[str, dict] = {}
    modules = {
        inspect.getmodule(current_app.view_functions[rule.endpoint])
        for rule in current_app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIX + "/")
    }
    for module in sorted(modules, key=lambda module: module.__name__):
        for path, operations in getattr(module, "OPENAPI_PATHS", {}).items():
            paths.setdefault(API_PREFIX + path, {}).update(operations)
    for operations in paths.values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
            responses.setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": API_TITLE, "version": API_VERSION},
        "paths": dict(sorted(paths.items())),
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
            "responses": {
                "Unauthorized": {"description": "Missing or invalid token", "content": ERROR_CONTENT},
                "Forbidden": {"description": "The token's role may not do this", "content": ERROR_CONTENT},
            },
        },
    }


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
@token_required
def openapi_json() -> Response:
    return openapi_document()
