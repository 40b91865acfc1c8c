"""gunicorn for a web node: `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (systemd: deploy/systemd/).

Why these numbers (docs/performance.md, bench/ussd.py): gthread workers keep the provider's and HAProxy's keep-alive
connections open, where sync workers close one per request; one worker process per core; a handful of threads per
worker, because a hop spends most of its time waiting on PostgreSQL and Redis, not on the CPU. Every value can be
changed per node through the environment named beside it, without editing this file.
"""

import multiprocessing
import os

# Where this node listens; HAProxy (deploy/haproxy/haproxy.cfg) sends traffic here.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# One worker per core: a hop is short, and more processes than cores only add context switches.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
# Threads per worker: requests waiting on the database or Redis while another uses the CPU.
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# HAProxy keeps connections open between hops; slightly longer than its own idle timeout so gunicorn never closes
# one under a request in flight.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 65))
# A request that takes this long is stuck (a hop answers in milliseconds; the console's payment import in seconds):
# the worker is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# Graceful shutdown (SIGTERM, a rolling restart): requests in flight get this long to finish before the worker goes.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
# A worker is replaced after this many requests (with jitter, so they do not all restart at once): a slow leak in a
# library never grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 50000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 5000))
# Each worker builds the app itself: no database or Redis connection can be opened before a fork and shared by two
# processes, and a rolling restart (SIGHUP) loads the new code in every worker.
preload_app = False
# Access lines would log every hop's URL with its token; the gateway logs what matters itself (LOG_FORMAT).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Behind HAProxy on the same host or network: believe its X-Forwarded-For only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "gateway-web"

# --- Prometheus multiprocess metrics --------------------------------------------------------------------------------
# PROMETHEUS_MULTIPROC_DIR: the directory where every gunicorn worker writes its metric files, so that one scrape
# of /metrics adds up all workers. It is set up here, in the hooks below, by the metrics module; this file only
# keeps the place. The directory must be emptied before the master starts (systemd: ExecStartPre in the unit).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def child_exit(server, worker):
    """A worker left (restart, crash): the metrics module marks its files dead here (PROMETHEUS_MULTIPROC_DIR)."""
