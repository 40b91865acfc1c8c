"""Private servers for the tests that stop and restart them (a shared Redis cannot be killed mid-suite)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from config.redis import connect, redis_server_binary

# Seconds a freshly started Redis has to answer.
START_SECONDS = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    """A Redis on 127.0.0.1:`port` that keeps nothing on disk, once it answers PING."""
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_SECONDS
    while not _pings(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server on port {port} did not start")
        time.sleep(0.05)
    return process


def _pings(port: int) -> bool:
    try:
        return bool(connect(f"redis://127.0.0.1:{port}/0").ping())
    except redis.RedisError:
        return False
