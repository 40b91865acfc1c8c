"""`REDIS_URL=redis+sentinel://…`: real redis-server and redis-sentinel processes, a failover, and a client that
follows it; and the start-up warning about a server that would evict keys."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from config.redis import SentinelTarget, connect, eviction_warning, round_trip
from tests.servers import free_port, start_redis

MASTER = "gateway"
# Seconds the client may take to reach the new primary once Sentinel has promoted it (the drill allows 30). A dead
# primary is left at once; a demoted one only when Sentinel tells it so, on its next look (every 10 s): until then it
# still takes writes, as Redis replication does (docs/deploy.md).
FOLLOW_SECONDS = 20
SENTINEL_START_SECONDS = 10
SENTINEL_BINARY = shutil.which("redis-sentinel")

pytestmark = pytest.mark.skipif(SENTINEL_BINARY is None, reason="redis-sentinel is not installed")


def test_a_sentinel_url_names_the_sentinels_the_master_the_database_and_the_password():
    target = SentinelTarget.parse("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3")
    assert target == SentinelTarget([("10.0.0.1", 26379), ("10.0.0.2", 26380)], "mymaster", 3, "s@cret")
    assert SentinelTarget.parse("redis+sentinel://h:1/m") == SentinelTarget([("h", 1)], "m", 0, None)
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h/m/0", "redis+sentinel:///m/0"):
        with pytest.raises(ValueError):
            SentinelTarget.parse(bad)


def start_sentinel(port: int, primary_port: int, directory: Path) -> subprocess.Popen:
    config = directory / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
    )
    process = subprocess.Popen([SENTINEL_BINARY, str(config)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + SENTINEL_START_SECONDS
    while True:
        try:
            if redis_lib.Redis(port=port, socket_timeout=0.5).sentinel_master(MASTER):
                return process
        except redis_lib.RedisError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-sentinel on port {port} did not start")
        time.sleep(0.1)


@pytest.fixture
def sentinel_setup(tmp_path) -> Iterator[dict]:
    """A primary, its replica (in sync), and one Sentinel watching them: ports and processes."""
    primary_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    processes = {"primary": start_redis(primary_port, tmp_path / "primary")}
    processes["replica"] = start_redis(replica_port, tmp_path / "replica")
    replica = redis_lib.Redis(port=replica_port)
    replica.replicaof("127.0.0.1", primary_port)
    assert _until(lambda: replica.info("replication")["master_link_status"] == "up", 10)
    processes["sentinel"] = start_sentinel(sentinel_port, primary_port, tmp_path)
    sentinel = redis_lib.Redis(port=sentinel_port)
    assert _until(lambda: sentinel.sentinel_master(MASTER)["num-slaves"] == 1, 10)
    yield {
        "url": f"redis+sentinel://127.0.0.1:{sentinel_port}/{MASTER}/0",
        "primary_port": primary_port,
        "replica_port": replica_port,
        "sentinel": sentinel,
        "processes": processes,
    }
    for process in processes.values():
        process.kill()
        process.wait()


def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except redis_lib.RedisError:
            pass
        time.sleep(0.05)
    return False


def _port_of_primary(client) -> int:
    """The port of the server `round_trip`'s kept connection is on, from the server itself."""
    (info,) = round_trip(client, ("INFO", "server"))
    return int(next(line for line in info.decode().splitlines() if line.startswith("tcp_port:")).partition(":")[2])


@pytest.mark.parametrize("how", ["sentinel failover", "primary killed"])
def test_the_client_follows_a_failover_to_the_new_primary(sentinel_setup, how):
    client = connect(sentinel_setup["url"])
    assert round_trip(client, ("SET", "before", "1"), ("WAIT", 1, 1000)) == [b"OK", 1]
    assert client.set("plain", "1") and _port_of_primary(client) == sentinel_setup["primary_port"]
    if how == "sentinel failover":
        # A Sentinel refuses (NOGOODSLAVE) until it has seen the new replica answer for a moment: ask until it agrees.
        command = ("SENTINEL", "FAILOVER", MASTER)
        assert _until(lambda: sentinel_setup["sentinel"].execute_command(*command), FOLLOW_SECONDS)
    else:
        sentinel_setup["processes"]["primary"].kill()
    new_port = sentinel_setup["replica_port"]
    assert _until(lambda: int(sentinel_setup["sentinel"].sentinel_master(MASTER)["port"]) == new_port, 20)
    started = time.monotonic()

    def writes_on_the_new_primary() -> bool:
        written = round_trip(client, ("SET", "after", "1"), ("GET", "before")) == [b"OK", b"1"]
        return written and _port_of_primary(client) == sentinel_setup["replica_port"]

    # The kept connection moves: to a demoted primary a write is refused (READONLY), to a dead one the socket is.
    assert _until(writes_on_the_new_primary, FOLLOW_SECONDS), f"no write reached the new primary after {how}"
    assert time.monotonic() - started < FOLLOW_SECONDS
    assert _until(lambda: client.set("plain", "2"), FOLLOW_SECONDS)  # and so did the ordinary pool
    assert client.get("after") == b"1"


def test_a_server_that_may_evict_keys_gets_a_warning(tmp_path):
    port = free_port()
    server = start_redis(port, tmp_path)
    try:
        client = connect(f"redis://127.0.0.1:{port}/0")
        client.config_set("maxmemory-policy", "allkeys-lru")
        assert "allkeys-lru" in eviction_warning(client) and "noeviction" in eviction_warning(client)
        client.config_set("maxmemory-policy", "noeviction")
        assert eviction_warning(client) is None
    finally:
        server.kill()
        server.wait()
