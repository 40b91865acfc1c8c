"""`GET /metrics`: the Prometheus page of a web node.

Under gunicorn with `PROMETHEUS_MULTIPROC_DIR` the page adds up every gunicorn worker of the node
(`config.metrics.exposition`); then comes the backlog read from the database and Redis at scrape time
(`notifications.sms.backlog`). No webhook token: when `METRICS_TOKEN` is set the scraper sends it as a bearer token,
otherwise the page is open and the network must keep it private (it holds counts, never a number or a name).
"""

from __future__ import annotations

import hmac
from functools import cached_property

from flask import Blueprint, Flask, Response, current_app, request

from config.metrics import exposition
from gateway.services import Services, get_services
from notifications.sms.backlog import BacklogCollector
from notifications.sms.breaker import route_breakers

bp = Blueprint("metrics", __name__)

BEARER_PREFIX = "Bearer "
EXTENSION = "gateway.metrics"


@bp.get("/metrics")
def metrics() -> Response:
    """The node's counters and the deployment's backlog, in Prometheus's text format."""
    settings = get_services().settings
    if settings.metrics_token:
        sent = request.headers.get("Authorization", "")
        token = sent[len(BEARER_PREFIX) :] if sent.startswith(BEARER_PREFIX) else ""
        if not hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
            return Response(
                "missing or wrong bearer token (METRICS_TOKEN)\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    body, content_type = exposition(current_app.extensions[EXTENSION].collector)
    return Response(body, content_type=content_type)


class _Backlog:
    """The node's backlog collector, made on first scrape: Redis is resolved only when something needs it."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @cached_property
    def collector(self) -> BacklogCollector:
        breakers = route_breakers(self.services.redis, self.services.settings)
        return BacklogCollector(self.services.db, self.services.redis, breakers)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = _Backlog(get_services(app))
    app.register_blueprint(bp)
