"""`config.redis.round_trip`: one write, replies in order, a kept connection per thread, and recovery."""

from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib

from config.redis import connect, round_trip
from tests.servers import free_port, start_redis


def test_replies_come_back_in_order_from_one_write(redis):
    assert round_trip(redis, ("SET", "k", "v", "EX", 60), ("GET", "k"), ("MGET", "k", "missing")) == [
        b"OK",
        b"v",
        [b"v", None],
    ]
    assert 58 <= redis.ttl("k") <= 60


def test_a_reply_error_is_raised_and_leaves_no_reply_behind(redis):
    redis.set("k", "not a number")
    with pytest.raises(redis_lib.ResponseError):
        round_trip(redis, ("INCR", "k"), ("GET", "k"))
    # The unread GET reply went with the dropped connection; the next call reads its own reply.
    assert round_trip(redis, ("GET", "k")) == [b"not a number"]


def test_each_thread_keeps_its_own_connection(redis):
    def client_id() -> int:
        return round_trip(redis, ("CLIENT", "ID"))[0]

    mine = client_id()
    assert client_id() == mine
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.extend([client_id(), client_id()]))
    thread.start()
    thread.join()
    assert other[0] == other[1] != mine


def test_a_kept_connection_survives_a_redis_restart(tmp_path):
    port = free_port()
    server = start_redis(port, tmp_path)
    client = connect(f"redis://127.0.0.1:{port}/0")
    try:
        assert round_trip(client, ("SET", "k", "before")) == [b"OK"]
        server.kill()
        server.wait()
        server = start_redis(port, tmp_path)  # empty: nothing is saved
        assert round_trip(client, ("GET", "k"), ("SET", "k", "after")) == [None, b"OK"]
        assert client.get("k") == b"after"
    finally:
        server.kill()
        server.wait()
        client.close()


def test_redis_down_fails_fast_with_a_connection_error():
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(redis_lib.ConnectionError):
        round_trip(client, ("MGET", "a", "b"))
    assert time.monotonic() - started < 1.0
