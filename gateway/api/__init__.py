"""The staff JSON API at /api/v1: bearer-token authentication (`gateway.auth.token_required`), JSON in and out.

Every error under /api/v1 is JSON, `{"error": "..."}`, never an HTML page: clients are scripts, not browsers.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from gateway.auth import json_error, token_required
from models.staff import StaffUser

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Status codes whose errors the API answers as JSON for URLs that match no route (the blueprint's own handler
# cannot see those, because no blueprint has been chosen yet).
UNROUTED_ERRORS = (404, 405)

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)


def staff_json(user: StaffUser) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "districts": list(user.district_list),  # empty: every district
        "active": user.active,
    }


# The `/me` route's description, for gateway/api/openapi.py.
OPENAPI_PATHS = {
    "/me": {
        "get": {
            "summary": "Who the token belongs to",
            "responses": {"200": {"description": "The staff member: id, email, role, districts, active"}},
        }
    }
}


@bp.get("/me")
@token_required
def me() -> Response:
    """Who the token belongs to: a client's first call, to check its token and see its role."""
    return staff_json(g.staff)


@bp.errorhandler(HTTPException)
def api_http_error(error: HTTPException) -> Response:
    """400, 401, 403, 409, 500 and the rest, raised inside an API view, as JSON."""
    if error.code is not None and error.code >= 500:
        log.error("API %s %s failed: %s", request.method, request.path, error)
    return json_error(error.code or 500, error.description or error.name)


def _unrouted_error(error: HTTPException):
    """404 and 405 for URLs no view matched: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX:
        return api_http_error(error)
    return error


def init_app(app: Flask) -> None:
    # The route modules attach themselves to `bp`; importing them here keeps this file their table of contents.
    from gateway.api import (
        beneficiaries,  # noqa: F401
        campaigns,  # noqa: F401
        openapi,  # noqa: F401
    )

    app.register_blueprint(bp)
    for code in UNROUTED_ERRORS:
        app.register_error_handler(code, _unrouted_error)
