"""The staff JSON API at /api/v1: bearer-token authentication (`gateway.auth.token_required`), JSON in and out.

Each module of this package holds the routes of one area on its own blueprint; `init_app` mounts them all under
one `api` blueprint at /api/v1, whose error handler makes every error JSON (`gateway.api.errors`). An endpoint is
named `api.<area>.<view>`.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from werkzeug.exceptions import HTTPException

from gateway.api import beneficiaries, campaigns, checkins, me, openapi
from gateway.api.errors import API_PREFIX, UNROUTED_ERRORS, api_http_error, unrouted_error

API_BLUEPRINT = "api"
# The API's areas: each module holds its routes on its own `bp`, and describes them in its `OPENAPI_PATHS`.
AREAS = (me, beneficiaries, campaigns, checkins, openapi)


def init_app(app: Flask) -> None:
    # A parent made per application: the areas are registered on it afresh each time, so that tests can build
    # many applications in one process. Its error handler covers every area's routes.
    api = Blueprint(API_BLUEPRINT, __name__, url_prefix=API_PREFIX)
    api.register_error_handler(HTTPException, api_http_error)
    for area in AREAS:
        api.register_blueprint(area.bp)
    app.register_blueprint(api)
    for code in UNROUTED_ERRORS:
        app.register_error_handler(code, unrouted_error)
