"""Fixtures for the SMS side: the provider emulator and throwaway HTTP servers, all real servers on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from werkzeug.serving import make_server

from notifications.emulator import SERVE_POLL_SECONDS, EmulatorServer, EmulatorState

LOOPBACK = "127.0.0.1"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The provider emulator on a free loopback port; `emulator.url` is the `AT_API_BASE_URL` to use.

    It accepts any non-empty API key; a test that needs a specific one sets `emulator.state.configure(api_key=...)`.
    """
    server = EmulatorServer(EmulatorState(), host=LOOPBACK, port=0).start()
    yield server
    server.stop()


@pytest.fixture
def wsgi_server() -> Iterator[Callable]:
    """Serve any WSGI app on a free loopback port: `url = wsgi_server(app)`. Stopped after the test.

    For the other side of a conversation: a delivery-report receiver, or a provider that answers what a test wants.
    """
    running = []

    def serve(app) -> str:
        server = make_server(LOOPBACK, 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL_SECONDS,), daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://{LOOPBACK}:{server.server_port}"

    yield serve
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()
