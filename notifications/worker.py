"""The worker process: RQ on the gateway's queues (transactional first), plus the outbox sweep."""

from __future__ import annotations

import logging
import os
import threading

import redis
from rq import Worker

from config import Settings
from config.redis import connect
from notifications.queues import queues
from notifications.runtime import Runtime

log = logging.getLogger(__name__)


class Sweeper(threading.Thread):
    """Every SWEEP_INTERVAL_SECONDS: settle messages stuck mid-call and enqueue what commits could not.

    This is what makes a Redis outage or a killed worker delay messages rather than lose them.
    """

    def __init__(self, runtime: Runtime, stop: threading.Event):
        super().__init__(name="outbox-sweeper", daemon=True)
        self.runtime = runtime
        self.stop = stop

    def run(self) -> None:
        while not self.stop.wait(self.runtime.settings.sweep_interval_seconds):
            try:
                result = self.runtime.dispatcher.sweep()
                if any(result.values()):
                    log.info("sweep: %s", result)
            except Exception:  # the sweep must outlive a Redis or database blip
                log.exception("sweep failed; trying again in %ss", self.runtime.settings.sweep_interval_seconds)


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run until stopped (or, with `burst`, until the queues are empty). Jobs read the same settings from the env."""
    os.environ["REDIS_URL"] = settings.redis_url
    os.environ["DATABASE_URL"] = settings.database_url
    runtime = Runtime(settings)
    stop = threading.Event()
    sweeper = Sweeper(runtime, stop)
    sweeper.start()
    # Blocking pops need a connection without a read timeout.
    connection: redis.Redis = connect(settings.redis_url, socket_timeout=None)
    try:
        runtime.dispatcher.sweep()
        Worker(queues(connection), connection=connection).work(burst=burst, with_scheduler=not burst)
    finally:
        stop.set()
