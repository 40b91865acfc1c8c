"""The gateway's Prometheus metrics, named once, and how a process exposes them.

Every layer counts what it does through the objects defined here (the web nodes, the workers and the CLI alike), so
a metric has one name, one help text and one set of labels. Labels are small fixed sets: never a phone number, a
session id or anything else that grows with the traffic.

Web nodes run under gunicorn with several worker processes; each keeps its own counters. With
`PROMETHEUS_MULTIPROC_DIR` set in the environment before the app is imported (deploy/gunicorn.conf.py does), every
process writes its values to files in that directory and one scrape of `/metrics` adds up all of them
(`MultiProcessCollector`); gunicorn's `child_exit` hook calls `gunicorn_child_exit` so that a dead process's files
are merged instead of counted as live, and `on_starting` calls `clear_multiprocess_dir` so a restart starts from zero.
Without the variable (a worker, the development server, tests) the process's own registry is exposed.

The figures that describe the backlog (queue depths, the age of the oldest queued SMS, campaign progress, the pause
and breaker flags) are not counted here: they are read from the database and Redis when Prometheus scrapes
(`notifications.sms.backlog.BacklogCollector`), because they are facts about the deployment, not about one process.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# The environment variable that switches prometheus_client to its multiprocess mode (read when it is imported).
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- USSD ------------------------------------------------------------------------------------------------------------

SCREEN_CON = "CON"
SCREEN_END = "END"
HOP_ANSWERED = "answered"  # the menu answered (a screen, a re-sent hop, an error re-asked)
HOP_UNAVAILABLE = "unavailable"  # Redis or the database failed: the polite busy screen
HOP_UNSERVED = "unserved"  # a number the programme does not serve
# A hop takes a millisecond or two when all is well; the upper buckets are the provider's patience (a few seconds).
HOP_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

USSD_HOPS = Counter(
    "gateway_ussd_hops", "USSD hops answered, by screen kind (CON/END) and outcome", ["screen", "outcome"]
)
USSD_HOP_SECONDS = Histogram("gateway_ussd_hop_seconds", "Time to answer one USSD hop", buckets=HOP_BUCKETS)
USSD_SESSIONS_STARTED = Counter("gateway_ussd_sessions_started", "USSD sessions whose first hop the menu answered")
USSD_SESSIONS_ENDED = Counter(
    "gateway_ussd_sessions_ended",
    "USSD sessions the provider reported ended, by its status (Success is a completed session)",
    ["status"],
)
USSD_END_STATUSES = frozenset({"Success", "Incomplete", "Failed"})  # the provider's; anything else is "other"
SESSION_END_OTHER = "other"
CHANNEL_USSD = "ussd"  # the returnee on the menu
CHANNEL_STAFF = "staff"  # walk-in registration by staff
REGISTRATIONS = Counter("gateway_registrations", "Beneficiaries registered, by channel", ["channel"])

# The label children of the hop, bound once: a hop then costs one increment and one observation, no label lookup.
HOP_COUNTERS = {
    (end, outcome): USSD_HOPS.labels(screen=SCREEN_END if end else SCREEN_CON, outcome=outcome)
    for end, outcome in ((False, HOP_ANSWERED), (True, HOP_ANSWERED), (True, HOP_UNAVAILABLE), (True, HOP_UNSERVED))
}

# -- SMS -------------------------------------------------------------------------------------------------------------

SMS_FINAL = Counter(
    "gateway_sms_final", "Outbound SMS that reached a final status, by priority and status", ["priority", "status"]
)
CALL_OK = "ok"  # the provider answered the call (whatever it said about each number)
CALL_UNAVAILABLE = "unavailable"  # 5xx, 429, connection refused, connect timeout: the provider did not take it
CALL_UNKNOWN = "unknown"  # read timeout or unreadable answer: the provider may have taken it
CALL_REFUSED = "refused"  # the call was refused for good (credentials, bad request)
CALL_OUTCOMES = (CALL_OK, CALL_UNAVAILABLE, CALL_UNKNOWN, CALL_REFUSED)
PROVIDER_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)
SMS_PROVIDER_CALLS = Counter(
    "gateway_sms_provider_calls", "Calls to the SMS provider, by route and outcome", ["route", "outcome"]
)
SMS_PROVIDER_CALL_SECONDS = Histogram(
    "gateway_sms_provider_call_seconds",
    "Time of one SMS provider call, by route",
    ["route"],
    buckets=PROVIDER_CALL_BUCKETS,
)
SMS_SEND_WINDOW = Gauge(
    "gateway_sms_send_window",
    "Provider calls this worker may have in flight on a route now (the adaptive window, notifications.sms.congestion)",
    ["route"],
)
SMS_BREAKER_TRANSITIONS = Counter(
    "gateway_sms_breaker_transitions", "Circuit breaker changes of a route, by the state entered", ["route", "state"]
)

# -- the edges ---------------------------------------------------------------------------------------------------------

REFUSED_NETWORK = "network"  # caller outside WEBHOOK_ALLOWED_NETWORKS
REFUSED_TOKEN = "token"  # missing or wrong WEBHOOK_TOKEN
REFUSED_BAD_REQUEST = "bad_request"  # a callback the provider could not have sent
REFUSED_TOO_LARGE = "too_large"  # body over the limit
WEBHOOK_REFUSALS = Counter("gateway_webhook_refusals", "Webhook requests refused, by reason", ["reason"])
LOGIN_FAILURES = Counter("gateway_login_failures", "Staff console logins refused, by reason", ["reason"])


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def exposition(*collectors) -> tuple[bytes, str]:
    """The metrics page of this process (every gunicorn worker's, summed, in multiprocess mode), followed by what
    `collectors` read now; returns the body and its content type."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + b"".join(generate_latest(collector) for collector in collectors)
    return body, CONTENT_TYPE_LATEST


def gunicorn_child_exit(_server, worker) -> None:
    """gunicorn's `child_exit` hook: merge a dead worker's live values away, so the next scrape stays right."""
    if multiprocess_dir():
        mark_process_dead(worker.pid)


def clear_multiprocess_dir() -> None:
    """gunicorn's `on_starting` hook: forget the files of a previous run, whose processes are all gone."""
    directory = multiprocess_dir()
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
