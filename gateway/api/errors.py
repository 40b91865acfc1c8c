"""Where the API lives, and its errors: every error under /api/v1 is JSON, `{"error": "..."}`, never an HTML page.

Clients are scripts, not browsers. Errors raised inside an API view are answered by the handler `gateway.api`
puts on the API's blueprint; 404 and 405 for URLs that match no route reach no blueprint, so the application's
handler tells API URLs from the console's by this prefix.
"""

from __future__ import annotations

import logging

from flask import Response, request
from werkzeug.exceptions import HTTPException

from gateway.auth import json_error

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Status codes whose errors the API answers as JSON for URLs that match no route.
UNROUTED_ERRORS = (404, 405)


def api_http_error(error: HTTPException) -> Response:
    """400, 401, 403, 409, 500 and the rest, raised inside an API view, as JSON."""
    if error.code is not None and error.code >= 500:
        log.error("API %s %s failed: %s", request.method, request.path, error)
    return json_error(error.code or 500, error.description or error.name)


def unrouted_error(error: HTTPException):
    """404 and 405 for URLs no view matched: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX:
        return api_http_error(error)
    return error
