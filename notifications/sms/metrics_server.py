"""The worker's own metrics page (`flask --app wsgi worker --metrics-port N`): provider calls, final statuses and
breaker changes counted by this worker process.

A worker is one process (RQ's SimpleWorker with sending threads), so its page is its own registry, never the
multiprocess directory of the web nodes even if the environment names one. The deployment-wide backlog is on the web
nodes' page (`notifications.sms.backlog`), so that it is there when no worker is.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server

METRICS_PATH = "/metrics"


def metrics_page() -> tuple[bytes, str]:
    """This process's metrics in Prometheus's text format, and the content type to answer with."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str = "0.0.0.0"):  # noqa: S104 - scraped from the monitoring host
    """Serve `metrics_page()` on `port` from a daemon thread; returns the server (`shutdown()`, then
    `server_close()`, stop it)."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
