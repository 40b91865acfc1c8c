"""The worker process: RQ on the gateway's queues (transactional first), plus the outbox sweep."""

from __future__ import annotations

import logging
import os
import threading
from functools import partial

import redis
from rq import SimpleWorker

from config import Settings
from config.redis import connect, warn_if_evicting
from models.reports import refresh_dashboard_counts
from notifications.campaigns.fanout import sweep_campaigns
from notifications.casework.retention import retention_pass
from notifications.checkins.reminders import sweep_checkins
from notifications.sms.metrics_server import METRICS_PATH, metrics_page
from notifications.sms.queues import queues
from notifications.sms.runtime import Runtime, set_runtime
from notifications.sms.worker_http import Routes, WorkerEndpoints, liveness

log = logging.getLogger(__name__)

# Seconds between the end of RQ's loop on a Redis error and its next start.
RESTART_SECONDS = 1.0


def sweep(runtime: Runtime) -> dict[str, int]:
    """Settle messages whose worker died mid-call, close check-ins and write their reminders, move campaigns along,
    enqueue drain jobs for anything due, and forget what is past its retention period.

    Run at start-up and periodically: this is also what ends quiet hours and starts scheduled campaigns. It lives
    here, beside the thread that runs it, because it joins the SMS transport and the campaigns, which know nothing
    of each other's sweeps.
    """
    settled = runtime.dispatcher.settle_stuck()
    checkins = sweep_checkins(runtime.db, runtime.redis)
    campaigns = sweep_campaigns(runtime.db, runtime.redis)
    kicked = runtime.dispatcher.kick_due()
    dashboard = dashboard_pass(runtime)
    return {"settled": settled, "kicked": kicked, **checkins, **campaigns, **retention_pass(runtime), **dashboard}


def dashboard_pass(runtime: Runtime) -> dict[str, int]:
    """Recount the dashboard's figures when they are DASHBOARD_REFRESH_SECONDS old (models/reports.py says why a
    recount each minute and not counters); of several workers' sweeps, one recounts and the others find them fresh."""
    with runtime.db.session() as session:
        recounted = refresh_dashboard_counts(session, max_age=runtime.settings.dashboard_refresh_seconds)
    return {"dashboard_recounted": 1} if recounted else {}


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
                result = sweep(self.runtime)
                if any(result.values()):
                    log.info("sweep: %s", result)
            except Exception:  # the sweep must outlive a Redis or database blip
                log.exception("sweep failed; trying again in %ss", self.runtime.settings.sweep_interval_seconds)


class GatewayWorker(SimpleWorker):
    """RQ's in-process worker, remembering whether it was asked to stop (SIGTERM, SIGINT).

    RQ's loop ends the same way on a stop request and on a Redis error; `run_worker` must start it again after the
    second and never after the first.
    """

    stop_was_requested = False

    def request_stop(self, signum, frame) -> None:
        self.stop_was_requested = True
        super().request_stop(signum, frame)


def worker_routes(sweeper: Sweeper) -> Routes:
    """What the worker serves on `--metrics-port`: its liveness and its metrics."""
    return {"/healthz": partial(liveness, sweeper), METRICS_PATH: metrics_page}


def run_worker(
    settings: Settings, *, burst: bool = False, metrics_port: int | None = None, metrics_host: str = "0.0.0.0"
) -> None:
    """Run until stopped (or, with `burst`, until the queues are empty). Jobs read the same settings from the env.

    With `metrics_port`, the worker also serves `worker_routes` over HTTP on that port.
    """
    os.environ["REDIS_URL"] = settings.redis_url
    os.environ["DATABASE_URL"] = settings.database_url
    runtime = Runtime(settings)
    set_runtime(runtime)  # the jobs, run in this process, use the same one
    stop = threading.Event()
    sweeper = Sweeper(runtime, stop)
    sweeper.start()
    endpoints = None
    if metrics_port is not None:
        endpoints = WorkerEndpoints(worker_routes(sweeper), metrics_host, metrics_port).start()
    # Blocking pops need a connection without a read timeout.
    connection: redis.Redis = connect(settings.redis_url, socket_timeout=None)
    warn_if_evicting(connection)
    try:
        sweep(runtime)
        # SimpleWorker runs jobs in this process instead of forking a work horse per job: the database pool, the
        # provider's keep-alive connections and the sending threads then outlive a job, which saves a fork and a
        # rebuild on every drain slice (a slice is seconds long, so a message waits that much less to start).
        while True:
            worker = None
            try:
                worker = GatewayWorker(queues(connection), connection=connection)
                worker.work(burst=burst, with_scheduler=not burst)
            except redis.ConnectionError:
                if burst:
                    raise
                log.warning("Redis unreachable as the worker loop started or stopped", exc_info=True)
            # RQ's loop ends on a stop request (SIGTERM), in burst mode when the queues are empty, and on any Redis
            # error (it logs "quitting"). The last must not end the process: a Redis failover or restart takes
            # seconds, and the sweeper and the health endpoint live on. So the loop starts again, on a fresh
            # connection to whichever server is primary by then.
            if burst or (worker is not None and worker.stop_was_requested):
                break
            log.warning("the worker loop ended without a stop request; starting it again in %ss", RESTART_SECONDS)
            if stop.wait(RESTART_SECONDS):
                break
    finally:
        stop.set()
        runtime.dispatcher.close()
        if endpoints is not None:
            endpoints.stop()
