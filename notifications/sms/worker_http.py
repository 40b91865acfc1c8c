"""The worker's own small HTTP server: `/healthz` for the supervisor and the load balancer's peers, and whatever
other read-only paths the worker serves (`/metrics`), on `flask --app wsgi worker --metrics-port N`.

A worker is not a web node: it has no Flask app to mount routes on, and must not need one. So this is the
standard library's WSGI server in a daemon thread, serving a dict of paths; a path is added by putting a function
into `routes` before `start`. Every answer is read-only and says nothing of data, like the web nodes' probes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger(__name__)

# What a path's function returns: HTTP status code, content type, body.
Answer = tuple[int, str, bytes]
Routes = dict[str, Callable[[], Answer]]
# Seconds the serving thread waits between looks at its stop flag.
POLL_SECONDS = 0.5
JSON = "application/json"
STATUS_TEXT = {200: "200 OK", 404: "404 Not Found", 405: "405 Method Not Allowed", 503: "503 Service Unavailable"}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape never holds up a health probe."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access line on stderr for every probe; errors still go to the log."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the standard library's name
        return


class WorkerEndpoints:
    """Serve `routes` on `host:port` in a daemon thread (`port=0`: a free one, see `.port`)."""

    def __init__(self, routes: Routes, host: str, port: int):
        self.routes = routes
        self.server = make_server(host, port, self._wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port = self.server.server_port
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(POLL_SECONDS,), name="worker-http", daemon=True
        )

    def start(self) -> WorkerEndpoints:
        self.thread.start()
        log.info("worker endpoints %s on port %s", ", ".join(sorted(self.routes)), self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _wsgi(self, environ: dict, start_response: Callable) -> list[bytes]:
        answer = self.routes.get(environ.get("PATH_INFO", ""))
        if answer is None:
            status, content_type, body = 404, "text/plain", b"not found\n"
        elif environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, content_type, body = 405, "text/plain", b"GET only\n"
        else:
            status, content_type, body = answer()
        start_response(STATUS_TEXT.get(status, str(status)), [("Content-Type", content_type)])
        return [body]


def liveness(*threads: threading.Thread) -> Answer:
    """200 while the worker's loop (the main thread) and every one of `threads` (the sweeper) run, else 503.

    No I/O: a worker waiting out a Redis failover is alive, and must not be restarted for it.
    """
    stopped = [thread.name for thread in (threading.main_thread(), *threads) if not thread.is_alive()]
    if stopped:
        return 503, JSON, (json.dumps({"status": "stopped", "threads": stopped}) + "\n").encode()
    return 200, JSON, b'{"status": "ok"}\n'
