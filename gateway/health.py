"""`GET /healthz` (the process answers) and `GET /readyz` (it can serve: database at head, Redis), for load balancers.

Both answer without a token or a session and say nothing of versions, hosts or data: a balancer, a monitor and
an attacker all learn the same thing, whether this node should get traffic. They sit outside `/webhooks/`, so the
webhook token and source allow-list do not apply.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify

from gateway.services import get_services
from models.migrate import head_revisions
from models.readiness import OK, readiness

bp = Blueprint("health", __name__)

# Set by `init_app`: the migration heads of the code this process runs, read once rather than on every probe.
HEADS_KEY = "health.migration_heads"
READY = 200
NOT_READY = 503


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. No I/O, so a slow database never gets a healthy process restarted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when every part is ok, else 503 naming each part and what is wrong with it."""
    services = get_services()
    parts = readiness(services.db, services.redis, current_app.extensions[HEADS_KEY])
    ready = all(state == OK for state in parts.values())
    return jsonify(status="ready" if ready else "not ready", **parts), READY if ready else NOT_READY


def init_app(app: Flask) -> None:
    app.extensions[HEADS_KEY] = head_revisions()
    app.register_blueprint(bp)
