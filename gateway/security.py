"""App-wide defences every response and request goes through: security headers, caching, body size, caller address.

See docs/security.md for the threat model these answer.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from config import Settings
from config.metrics import REFUSED_TOO_LARGE, WEBHOOK_REFUSALS
from gateway.addresses import caller_address, within
from gateway.assets import LONG_CACHE, is_versioned_asset
from gateway.auth import json_error

# The console's stylesheet comes from the gateway itself; its one small script (the practice phone's keypad) and any
# <style> block carry the per-response nonce. Nothing may frame a page (clickjacking), forms post only to the
# gateway, and no plugin or <base> can change where links go.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Console URLs carry search terms (a phone number, a name): never send them to another site.
REFERRER_POLICY = "no-referrer"
# One year of HTTPS-only, in production (behind TLS); not for subdomains, which the programme may not run.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"
# Every answer may hold personal data (a console page, an export, an API answer, a USSD screen): no cache keeps it.
# Only a versioned static file (gateway/assets.py) is cached.
CACHE_CONTROL = "no-store"
NONCE_BYTES = 16
# The last page number a paged list accepts: far past any real list, small enough that its offset fits every database.
MAX_PAGE = 1_000_000
# The largest id a route accepts: PostgreSQL's `integer`, the type of every primary key.
MAX_ROW_ID = 2**31 - 1
API_PREFIX = "/api/"
# Callbacks read their own body (gateway/webhooks.py checks its fields); parsing it here would consume it.
WEBHOOK_PREFIX = "/webhooks/"
NUL = "\x00"


def csp_nonce() -> str:
    """This response's nonce, for `<style nonce="{{ csp_nonce() }}">` (and a `<script>`, should one ever be needed)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(NONCE_BYTES)
    return g.csp_nonce


def caller_allowed(settings: Settings) -> bool:
    """True when WEBHOOK_ALLOWED_NETWORKS is empty or holds this request's caller."""
    if not settings.webhook_allowed_networks:
        return True
    caller = caller_address(settings)
    return caller is not None and within(caller, settings.webhook_allowed_networks)


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: at most a database integer, so `/campaigns/99999999999999999999` is a 404, not
    an overflow inside the database driver (a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def refuse_nul_characters() -> Response | None:
    """400 for a NUL character in the query, a form or a JSON body: no person types one, and PostgreSQL cannot
    store one (it would be a 500 deep inside a query)."""
    if request.path.startswith(WEBHOOK_PREFIX):
        return None
    sent = [request.args.to_dict(flat=False)]
    if request.is_json:
        sent.append(request.get_json(silent=True))
    elif request.method in ("POST", "PUT", "PATCH"):
        sent.append(request.form.to_dict(flat=False))
    if not any(_holds_nul(part) for part in sent):
        return None
    reason = "the request holds a NUL character"
    if request.path.startswith(API_PREFIX):
        return json_error(400, reason)
    return Response(reason + "\n", status=400, mimetype="text/plain")


def init_app(app: Flask, settings: Settings) -> None:
    """Before the blueprints: routes take the `int` converter when they are registered."""
    app.url_map.converters["int"] = RowIdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.before_request(refuse_nul_characters)
    production = settings.is_production

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(nonce=csp_nonce())
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = REFERRER_POLICY
        response.headers["Cache-Control"] = LONG_CACHE if is_versioned_asset(request, response) else CACHE_CONTROL
        if production:
            response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> Response:
        """413 with the limit: JSON under /api/, plain text elsewhere (a browser shows it as it is)."""
        reason = f"the request is larger than {settings.max_content_length} bytes (MAX_CONTENT_LENGTH)"
        if request.path.startswith(WEBHOOK_PREFIX):
            WEBHOOK_REFUSALS.labels(reason=REFUSED_TOO_LARGE).inc()
        if request.path.startswith(API_PREFIX):
            return json_error(413, reason)
        return Response(reason + "\n", status=413, mimetype="text/plain")
