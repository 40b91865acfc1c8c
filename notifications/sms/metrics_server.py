"""The worker's own metrics page (`/metrics` beside `/healthz` on `flask --app wsgi worker --metrics-port N`):
provider calls, final statuses and breaker changes counted by this worker process.

A worker is one process (RQ's SimpleWorker with sending threads), so its page is its own registry, never the
multiprocess directory of the web nodes even if the environment names one. The deployment-wide backlog is on the web
nodes' page (`notifications.sms.backlog`), so that it is there when no worker is.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from notifications.sms.worker_http import Answer

METRICS_PATH = "/metrics"


def metrics_page() -> Answer:
    """This process's metrics in Prometheus's text format, as the worker's endpoints answer (status, type, body)."""
    return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
