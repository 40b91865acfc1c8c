"""How fast the workers send transactional SMS, against the fastest the provider SDK can go, in the same run.

The gateway's promise is that putting every message through the outbox (a row per message, a claim, a recorded
answer) costs little next to the provider call itself. This script measures exactly that: it sends N messages
through real `flask --app wsgi worker` processes to the provider emulator (a separate process), then sends the same
batches (same texts, same recipients per call) straight to the same emulator with the Africa's Talking SDK in a
plain loop, and reports messages per second for both, their ratio (goal: at least RATIO_GOAL) and the workers'
peak memory. Two scenarios by default, because batching decides everything: every text unique (one provider call
per message, like personal payment notices) and one shared text (full batches, like a programme-wide notice).

    .venv/bin/python bench/sms.py              # both scenarios, 5000 messages, temporary SQLite, embedded Redis
    .venv/bin/python bench/sms.py --quick      # a smoke run in seconds
    .venv/bin/python bench/sms.py --database-url postgresql+psycopg://127.0.0.1:5432/postgres
    .venv/bin/python bench/sms.py --profile    # also cProfile one in-process drain, to see where the time goes
    .venv/bin/python bench/sms.py --latency 0.15 --workers 2 --rate 100    # one latency; the rate held per second
    .venv/bin/python bench/sms.py --latency 0.15 --overload-in-flight 8    # the provider answers 429 above 8 calls

Every scenario runs at each provider latency of `--latency` (default 0 and 0.15 s, ± `--jitter`): the emulator
delays each call as a real network does. The SDK loop at a latency is timed over its first BASELINE_CALLS_AT_LATENCY
calls only (it is one call at a time, so its rate is steady and a whole run would take many minutes). Each run also
reports the most messages the emulator received in any one second (the rate must hold in every second) and the calls
it refused with 429.

With a PostgreSQL URL, the URL names the server and a database to connect to for administration; every scenario
runs in a fresh database created there and dropped afterwards. Results also go to bench/results/ as JSON.
The exit status is 0 whenever the benchmark ran, whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import functools
import io
import os
import pstats
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import common
from sink import COUNT_PATH as SINK_COUNT_BYTES

# Run as a script, Python puts bench/ on the path (for `common`), not the project.
sys.path.insert(0, str(common.PROJECT_ROOT))

import africastalking  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from rq import Worker  # noqa: E402

from config import Settings, load_settings  # noqa: E402
from config.redis import connect, ensure_embedded_redis  # noqa: E402
from config.settings import KANNEL_SETTING  # noqa: E402
from devtools import kannel as devtools_kannel  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.db import Database  # noqa: E402
from models.messages import (  # noqa: E402
    ACCEPTED_MESSAGE_STATUSES,
    MessageKind,
    MessagePriority,
    OutboundMessage,
)
from models.migrate import upgrade  # noqa: E402
from models.people import get_or_create_contact  # noqa: E402
from notifications.sms.dispatch import Dispatcher, _statements  # noqa: E402
from notifications.sms.outbox import owe_text  # noqa: E402
from notifications.sms.providers.africastalking import ACCEPTED_CODES as AT_ACCEPTED_CODES  # noqa: E402
from notifications.sms.providers.africastalking import AfricasTalkingProvider  # noqa: E402
from notifications.sms.providers.kannel import CHARSET as KANNEL_CHARSET  # noqa: E402
from notifications.sms.providers.kannel import DLR_MASK as KANNEL_DLR_MASK  # noqa: E402
from notifications.sms.providers.kannel import SENDSMS_PATH, KannelProvider  # noqa: E402
from notifications.sms.queues import kick  # noqa: E402

DEFAULT_MESSAGES = 5000
QUICK_MESSAGES = 300
# The goal: the gateway sends at least this fraction of what a bare SDK loop sends.
RATIO_GOAL = 0.7

# Credentials the emulator accepts (any non-empty key); the same for the workers and the baseline.
AT_USERNAME = "sandbox"
AT_API_KEY = "x"
# High enough that the provider-wide rate limit never binds: the benchmark measures the pipeline, not the limit.
UNLIMITED_RATE_PER_SECOND = 1_000_000_000
# The worker's periodic sweep would kick the queue on its own and start the clock early; push it past any run.
BENCH_SWEEP_INTERVAL_SECONDS = 86400

# Recipients: one distinct Vodacom Lesotho number per message (+266 5 and seven digits), as transactional notices
# go to different people.
PHONE_PREFIX = "+2665"
PHONE_DIGITS = 7
# Rows are written in transactions of this many, so a large N neither holds one huge transaction nor commits per row.
WRITE_CHUNK = 500
# A one-part GSM-7 notice of realistic length (about 120 characters); `{serial}` makes it unique when wanted.
TEXT_TEMPLATE = (
    "Returnee programme: your reintegration grant payment M1500.00 is ready. Reference {serial}. Reply HELP."
)

# How often to look at progress and memory while the workers send.
PROGRESS_POLL_SECONDS = 0.025
# A memory sample (the process tree from /proc, then VmRSS and PSS of each) costs the benchmark ~5-10 ms of CPU,
# which the gateway phase alone would pay: every 50 ms that was a fifth of a core of a 2-core machine. Python's
# memory does not shrink back, so a coarser sample (plus the last one, and the kernel's VmHWM) loses no peak.
MEMORY_POLL_SECONDS = 0.25
# Seconds to wait for processes to come up.
EMULATOR_START_TIMEOUT_SECONDS = 15
WORKER_READY_TIMEOUT_SECONDS = 60
DEFAULT_SEND_TIMEOUT_SECONDS = 900
# Provider calls before timing anything, so that neither side pays for a cold emulator.
WARMUP_CALLS = 20
# The provider latencies every scenario runs at by default (seconds): loopback, and Africa's Talking from Lesotho.
DEFAULT_LATENCIES = (0.0, 0.15)
DEFAULT_JITTER_SECONDS = 0.05
# At a latency, the SDK loop's rate is measured over this many calls (one at a time: 200 calls at 150 ms is 30 s).
BASELINE_CALLS_AT_LATENCY = 200
# Baseline read timeout: the emulator answers in milliseconds; a stuck call should fail, not hang the run.
BASELINE_TIMEOUT_SECONDS = 30
# Functions shown from the profile of one in-process drain.
PROFILE_TOP = 30
KIB = 1024
MIB = 1024 * 1024

# The Kannel scenario (--kannel): one route, named as `make dev SMS_ROUTES=*=kannel` names it, through Kannel's fake
# SMSC; fewer messages by default, since each is one sendsms call and smsbox takes some tens a second on this machine.
KANNEL_ROUTE = "kannel"
KANNEL_SMSC_ID = "bench"
KANNEL_MESSAGES = 1000
QUICK_KANNEL_MESSAGES = 100
# Warnings and errors only: Kannel's debug log of every message would be part of what both phases measure.
KANNEL_LOG_LEVEL = 2
# What bearerbox's status page says of a connected SMSC link.
KANNEL_ONLINE = "online"
# The fake SMSC's line for each message it is given: "Got message 7: <31000 +26650000006 text Returnee ...>".
FAKE_SMSC_LINE = re.compile(r"Got message \d+: <\S+ (\S+) text (.*)>$")
# Between phases: the longest wait for the SMSC and the delivery reports, and how long the reports must be still.
KANNEL_SETTLE_TIMEOUT_SECONDS = 120
KANNEL_QUIET_SECONDS = 1.0
HTTP_ACCEPTED = 202
SINK_COUNT_PATH = SINK_COUNT_BYTES.decode()


# -- the workload ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """N (phone, text) pairs in id order; `distinct_texts` texts assigned round-robin, so batches interleave."""

    messages: int
    distinct_texts: int

    def phone(self, index: int) -> str:
        return f"{PHONE_PREFIX}{index:0{PHONE_DIGITS}d}"

    def text(self, index: int) -> str:
        return TEXT_TEMPLATE.format(serial=f"GR{index % self.distinct_texts:07d}")

    def pairs(self) -> list[tuple[str, str]]:
        return [(self.phone(index), self.text(index)) for index in range(self.messages)]

    def batches(self, batch_size: int) -> list[tuple[str, list[str]]]:
        """The provider calls the dispatcher makes for this workload, in its order (the index stands for the id)."""
        return dispatcher_batches(
            [(index, phone, text) for index, (phone, text) in enumerate(self.pairs())], batch_size
        )


def dispatcher_batches(messages: list[tuple[int, str, str]], batch_size: int) -> list[tuple[str, list[str]]]:
    """The provider calls the dispatcher makes for these (id, phone, text) messages once all are queued.

    The dispatcher takes the oldest due message's text and up to `batch_size` due messages with that text, by id;
    with distinct numbers that is every text's messages cut into chunks, calls ordered by their oldest message.
    """
    by_text: dict[str, list[tuple[int, str]]] = {}
    for message_id, phone, text in messages:
        by_text.setdefault(text, []).append((message_id, phone))
    chunks = []
    for text, members in by_text.items():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            chunks.append((chunk[0][0], text, [phone for _, phone in chunk]))
    chunks.sort(key=lambda chunk: chunk[0])
    return [(text, phones) for _, text, phones in chunks]


# -- processes ---------------------------------------------------------------------------------------------------------


class Children:
    """Every process this script starts, each in its own session so that a terminal's Ctrl-C reaches only us,
    and all of them (with whatever they forked) stopped on the way out, however the script ends."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> Children:
        atexit.register(self.stop_all)  # also when the script ends some other way
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()

    def start(self, command: list[str], *, env: dict[str, str] | None = None, log: Path | None = None):
        output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            command, cwd=common.PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        if log:
            output.close()  # the child has its own copy
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process group (an RQ worker, its work-horse and scheduler), then SIGKILL if it lingers."""
        common.stop_process_group(process)
        # A work-horse can outlive its parent in the group; the group id is the leader's pid, which we own.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process in self._processes:
            self._processes.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self._processes)):
            self.stop(process)


def start_emulator(children: Children, log_dir: Path) -> str:
    """The emulator in its own process, as in development, so its CPU is not the benchmark's; returns its origin."""
    port = common.free_port()
    children.start(
        [sys.executable, "-m", "devtools.emulator", "--host", common.HOST, "--port", str(port)],
        log=log_dir / "emulator.log",
    )
    url = f"http://{common.HOST}:{port}"
    deadline = time.monotonic() + EMULATOR_START_TIMEOUT_SECONDS
    while True:
        try:
            requests.get(f"{url}/_emulator/outcomes", timeout=1).raise_for_status()
            return url
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start; see {log_dir / 'emulator.log'}") from None
            time.sleep(0.1)


def reset_emulator(url: str) -> None:
    requests.post(f"{url}/_emulator/reset", timeout=BASELINE_TIMEOUT_SECONDS).raise_for_status()


def check_emulator(url: str, expected: set[tuple[str, str]], timeout: float = BASELINE_TIMEOUT_SECONDS) -> dict:
    """Did the emulator take exactly the expected (phone, text) pairs, each once? Returns counts and a verdict."""
    recorded = requests.get(f"{url}/_emulator/messages", timeout=timeout).json()
    got = [(message["phone"], message["text"]) for message in recorded["messages"]]
    received = set(got)
    return {
        **arrival_figures(recorded["requests"]),
        "requests": len(recorded["requests"]),
        "messages": len(got),
        "duplicates": len(got) - len(received),
        "missing": len(expected - received),
        "unexpected": len(received - expected),
        "exact": len(got) == len(expected) and received == expected,
    }


def arrival_figures(recorded_requests: list[dict]) -> dict:
    """What the provider saw per second: the most messages it took in any one-second window, and the calls it refused
    with 429 (the emulator's overload mode)."""
    taken = sorted(
        (request["at"], len(request["form"].get("to", "").split(",")))
        for request in recorded_requests
        if request.get("http_status") and 200 <= request["http_status"] < 300
    )
    worst, window_total, first = 0, 0, 0
    for at, count in taken:  # a sliding window [at - 1, at] over the arrivals in time order
        window_total += count
        while taken[first][0] <= at - 1:
            window_total -= taken[first][1]
            first += 1
        worst = max(worst, window_total)
    return {
        "worst_second": worst,
        "refused_429": sum(1 for request in recorded_requests if request.get("http_status") == 429),
    }


def configure_emulator(url: str, **changes) -> None:
    """Change the running emulator's latency, jitter or overload limits (`POST /_emulator/config`)."""
    requests.post(f"{url}/_emulator/config", json=changes, timeout=BASELINE_TIMEOUT_SECONDS).raise_for_status()


def network(args, latency: float) -> dict:
    """The emulator's settings for one latency of the run: the latency, its jitter, the overload limits. The SDK
    loop runs without the overload limits (it is one call at a time)."""
    return {
        "latency": latency,
        "jitter": min(args.jitter, latency),
        "max_in_flight": args.overload_in_flight,
        "max_calls_per_second": args.overload_rate,
    }


def latency_label(latency: float) -> str:
    return f"{latency * 1000:.0f}ms"


def capped_baseline(
    emulator_url: str, batches: list[tuple[str, list[str]]], net: dict
) -> tuple[float, float, set[tuple[str, str]]]:
    """`timed_baseline` over the calls that are timed at the network's latency (all at 0 ms, the first
    BASELINE_CALLS_AT_LATENCY otherwise), without the overload limits; returns seconds, busy cores and the
    (phone, text) pairs those calls sent."""
    timed = batches[:BASELINE_CALLS_AT_LATENCY] if net["latency"] else batches
    configure_emulator(emulator_url, max_in_flight=None, max_calls_per_second=None)
    try:
        seconds, busy = timed_baseline(emulator_url, timed)
    finally:
        configure_emulator(emulator_url, **net)
    return seconds, busy, {(phone, text) for text, phones in timed for phone in phones}


# -- peak memory -------------------------------------------------------------------------------------------------------


def _status_fields(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM...), in bytes; empty if the process is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[name] = int(parts[0]) * KIB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def vm_hwm(pid: int) -> int:
    """Peak resident memory of one process (VmHWM), in bytes; 0 if it is gone."""
    return _status_fields(pid).get("VmHWM", 0)


def _pss(pid: int) -> int:
    """Proportional set size: pages shared between the worker and its forked work-horse are counted once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * KIB
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _descendants(roots: list[int]) -> list[int]:
    """The roots and everything they forked, from the parent ids in /proc (no /proc/<pid>/children here)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The command name in parentheses may hold spaces; the parent id follows the last ')'.
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class MemoryWatch(threading.Thread):
    """Samples the worker process trees every MEMORY_POLL_SECONDS and keeps the largest total.

    An RQ worker forks a work-horse per job, so the worker's own VmHWM misses the horse; the sum over the tree is
    what the machine must hold. RSS counts the pages a horse shares with its parent twice, PSS once; both are kept.
    """

    def __init__(self, roots: list[int]) -> None:
        super().__init__(name="memory-watch", daemon=True)
        self.roots = roots
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.child_hwm = 0  # the largest VmHWM seen on a process other than a worker's main one
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(MEMORY_POLL_SECONDS):
            self.sample()

    def sample(self) -> None:
        pids = _descendants(self.roots)
        rss = pss = 0
        for pid in pids:
            fields = _status_fields(pid)
            rss += fields.get("VmRSS", 0)
            pss += _pss(pid)
            if pid not in self.roots:
                self.child_hwm = max(self.child_hwm, fields.get("VmHWM", 0))
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(pids))
        self.samples += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()


# -- databases ---------------------------------------------------------------------------------------------------------


class FreshDatabase:
    """A migrated, empty database per scenario: a temporary SQLite file, or a new PostgreSQL database that is
    dropped afterwards, so that no run measures a table full of an earlier run's rows."""

    def __init__(self, base_url: str | None, scratch: Path, label: str, benchmark: str = "sms") -> None:
        postgres = bool(base_url) and base_url.startswith("postgresql")
        if base_url and not postgres and not base_url.startswith("sqlite"):
            raise SystemExit(f"--database-url must be SQLite or PostgreSQL, got {base_url}")
        self.postgres = common.ScratchPostgres(base_url, benchmark) if postgres else None
        self.url = self.postgres.url if self.postgres else f"sqlite:///{scratch / f'{label}.sqlite3'}"

    @property
    def kind(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def __enter__(self) -> FreshDatabase:
        if self.postgres:
            self.postgres.create()
        upgrade(self.url)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.postgres:
            self.postgres.drop()


def write_outbox(db: Database, workload: Workload) -> None:
    """The workload as queued transactional rows, written the way the gateway writes them (`owe_text`)."""
    pairs = workload.pairs()
    for start in range(0, len(pairs), WRITE_CHUNK):
        with db.session() as session:
            for phone, text in pairs[start : start + WRITE_CHUNK]:
                owe_text(session, get_or_create_contact(session, phone), MessageKind.GRANT_NOTICE, text)


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(
            sa.select(OutboundMessage.status, sa.func.count()).group_by(OutboundMessage.status)
        ).all()
    return {str(status): count for status, count in rows}


def accepted_count(db: Database) -> int:
    """Messages the provider has taken, read through `progress_reader`: the benchmark polls this every
    PROGRESS_POLL_SECONDS while the workers send, and must not slow them down by doing so."""
    with progress_reader(db.url).connect() as connection:
        return connection.execute(
            sa.select(sa.func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.status.in_(ACCEPTED_MESSAGE_STATUSES))
        ).scalar_one()


@functools.cache
def progress_reader(url: str) -> sa.Engine:
    """A plain engine for the progress polls. The gateway's own engine begins every SQLite transaction with BEGIN
    IMMEDIATE, the write lock: polled through it 40 times a second, the count held the worker's writes back (SQLite's
    busy handler sleeps in steps of up to 100 ms), which no production reader does. A plain SQLite connection reads
    without a lock, beside WAL writers; on PostgreSQL it changes nothing."""
    return sa.create_engine(url)


# -- the two ways of sending -------------------------------------------------------------------------------------------


def baseline(emulator_url: str, batches: list[tuple[str, list[str]]]) -> float:
    """The same provider calls through the bare SDK in a plain loop; returns the seconds it took.

    This is the ceiling: no database, no queue, no parsing beyond the SDK's own, one process.
    """
    service = africastalking.SMSService(AT_USERNAME, AT_API_KEY)
    service._baseUrl = f"{emulator_url}/version1"
    started = time.perf_counter()
    for text, phones in batches:
        service.send(text, phones, timeout=BASELINE_TIMEOUT_SECONDS)
    return time.perf_counter() - started


def timed_baseline(emulator_url: str, batches: list[tuple[str, list[str]]]) -> tuple[float, float]:
    """`baseline`, and the cores busy machine-wide meanwhile."""
    cpu = common.MachineCpu()
    seconds = baseline(emulator_url, batches)
    return seconds, cpu.busy_cores()


def floor_calls(db: Database, batches: list[tuple[str, list[str]]]) -> list[tuple[str, list[int]]]:
    """The message ids of each SDK-loop batch, read from the rows `write_outbox` wrote (before any timing)."""
    with db.session() as session:
        id_of = dict(session.execute(sa.select(OutboundMessage.phone, OutboundMessage.id)).all())
    return [(text, [id_of[phone] for phone in phones]) for text, phones in batches]


def floor(emulator_url: str, db: Database, calls: list[tuple[str, list[int]]]) -> tuple[float, int]:
    """The SDK loop plus only the bookkeeping the outbox's exactly-once contract requires, per provider call: claim
    the call's queued rows (one conditional UPDATE ... RETURNING, committed before the call), make the same SDK call,
    record the accepted answers (one UPDATE, committed). The gateway's own two statements, in this process: no RQ,
    no Redis, no round planning, no window, pacer or breaker. Returns the seconds and the messages recorded accepted.

    This is the least any exactly-once sender on this outbox pays; the gateway's ratio to it is what its own machinery
    costs, and its ratio to the SDK loop is the most the gateway could reach.
    """
    service = africastalking.SMSService(AT_USERNAME, AT_API_KEY)
    service._baseUrl = f"{emulator_url}/version1"
    statements = _statements(db.engine.dialect.name)
    token = "floor"
    accepted_total = 0
    started = time.perf_counter()
    for text, ids in calls:
        with db.connection() as connection:
            claimed = connection.execute(
                statements.claim_keeping_route, {"ids": statements.id_set(ids), "token": token, "now": utcnow()}
            ).all()
        phone_of = dict(claimed)
        id_of = {phone: message_id for message_id, phone in claimed}
        # The loop's batch, in its order (the claim returns rows in no set order), less any row not claimed.
        phones = [phone_of[message_id] for message_id in ids if message_id in phone_of]
        answer = service.send(text, phones, timeout=BASELINE_TIMEOUT_SECONDS)
        accepted = [
            {"id": id_of[entry["number"]], "pid": entry["messageId"], "cost": entry.get("cost"), "parts": None}
            for entry in answer["SMSMessageData"]["Recipients"]
            if entry.get("statusCode") in AT_ACCEPTED_CODES and entry.get("number") in id_of
        ]
        if accepted:
            with db.connection() as connection:
                connection.execute(statements.mark_accepted, statements.answers(accepted, utcnow()))
        accepted_total += len(accepted)
    return time.perf_counter() - started, accepted_total


def warm_up(emulator_url: str) -> None:
    """A few calls so that the emulator's first-request costs (imports, thread start-up) land outside any timing."""
    workload = Workload(WARMUP_CALLS, WARMUP_CALLS)
    baseline(emulator_url, workload.batches(1))
    reset_emulator(emulator_url)


def worker_env(database_url: str, redis_url: str, emulator_url: str, batch_size: int) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AT_API_BASE_URL": emulator_url,
        "AT_USERNAME": AT_USERNAME,
        "AT_API_KEY": AT_API_KEY,
        "SMS_RATE_PER_SECOND": str(UNLIMITED_RATE_PER_SECOND),
        "SMS_BATCH_SIZE": str(batch_size),
        "SWEEP_INTERVAL_SECONDS": str(BENCH_SWEEP_INTERVAL_SECONDS),
        "QUIET_HOURS": "",
    }


def start_workers(children: Children, count: int, env: dict[str, str], connection: redis.Redis, log_dir: Path):
    """`count` real worker processes, returned once every one is registered with RQ and listening."""
    flask = str(Path(sys.executable).with_name("flask"))
    processes = [
        children.start([flask, "--app", "wsgi", "worker"], env=env, log=log_dir / f"worker-{number}.log")
        for number in range(count)
    ]
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
    while len(Worker.all(connection=connection)) < count:
        dead = [process for process in processes if process.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not start; see {log_dir}/worker-*.log")
        time.sleep(0.1)
    return processes


@dataclass
class GatewayRun:
    seconds: float | None  # None: not every message was accepted before the timeout
    accepted: int
    statuses: dict[str, int]
    peak_rss: int
    peak_pss: int
    peak_processes: int
    worker_hwm: int
    child_hwm: int
    memory_samples: int
    first_accepted_seconds: float | None  # from the kick to the first accepted row: job start-up latency
    busy_cores: float  # machine-wide, while the workers sent


def gateway(
    children: Children,
    db: Database,
    workload: Workload,
    *,
    workers: int,
    env: dict[str, str],
    connection: redis.Redis,
    log_dir: Path,
    timeout: float,
) -> GatewayRun:
    """Start the workers on the empty outbox, write the rows, kick, and time until every row is accepted.

    The workers start first because `run_worker` sweeps once at start-up and would begin sending before the clock.
    """
    processes = start_workers(children, workers, env, connection, log_dir)
    watch = MemoryWatch([process.pid for process in processes])
    try:
        write_outbox(db, workload)
        watch.start()
        cpu = common.MachineCpu()
        started = time.perf_counter()
        kick(connection, MessagePriority.TRANSACTIONAL)
        seconds, first, accepted = None, None, 0
        while time.perf_counter() - started < timeout:
            accepted = accepted_count(db)
            if accepted and first is None:
                first = time.perf_counter() - started
            if accepted >= workload.messages:
                seconds = time.perf_counter() - started
                break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a worker died mid-run; see {log_dir}/worker-*.log")
            if workers > 1:
                # One drain job runs at a time per kick; in production every commit kicks, which is what lets a
                # second worker take a job while the first sends. Kicking is idempotent (a Redis NX flag).
                kick(connection, MessagePriority.TRANSACTIONAL)
            time.sleep(PROGRESS_POLL_SECONDS)
        busy_cores = cpu.busy_cores()
        watch.stop()
        worker_hwm = max(vm_hwm(process.pid) for process in processes)
    finally:
        if watch.is_alive():  # an error cut the run short
            watch.stop()
        for process in processes:
            children.stop(process)
    return GatewayRun(
        seconds=seconds,
        accepted=accepted,
        statuses=status_counts(db),
        peak_rss=watch.peak_rss,
        peak_pss=watch.peak_pss,
        peak_processes=watch.peak_processes,
        worker_hwm=worker_hwm,
        child_hwm=watch.child_hwm,
        memory_samples=watch.samples,
        first_accepted_seconds=first,
        busy_cores=busy_cores,
    )


# -- profiling ---------------------------------------------------------------------------------------------------------


def profile_drain(db: Database, workload: Workload, redis_url: str, emulator_url: str, batch_size: int) -> str:
    """cProfile of one `Dispatcher.drain` in this process, built as the worker builds it; the top functions."""
    write_outbox(db, workload)
    settings = load_settings(worker_env(db.url, redis_url, emulator_url, batch_size))
    dispatcher = Dispatcher(
        settings=settings, db=db, redis=connect(redis_url), provider=AfricasTalkingProvider.from_settings(settings)
    )
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    handled, _ = dispatcher.drain(MessagePriority.TRANSACTIONAL)
    profiler.disable()
    seconds = time.perf_counter() - started
    out = io.StringIO()
    out.write(f"in-process drain: {handled} messages in {seconds:.2f} s ({handled / seconds:.0f} msg/s)\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(PROFILE_TOP)
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)
    return out.getvalue()


# -- the Kannel scenario ----------------------------------------------------------------------------------------------


@dataclass
class KannelBox:
    """A private Kannel started for the run: bearerbox and smsbox on free loopback ports, Kannel's fake SMSC behind
    them, and the sink its delivery reports go to."""

    sendsms_url: str
    admin_url: str
    sink_url: str
    fake_log: Path

    def wait_until_idle(self, expected_messages: int, offset: int) -> list[tuple[str, str]]:
        """Wait until the fake SMSC has printed `expected_messages` since byte `offset` of its log and the delivery
        reports have stopped, so that no phase pays for the last one's leftovers; the (number, text) pairs it got."""
        deadline = time.monotonic() + KANNEL_SETTLE_TIMEOUT_SECONDS
        got: list[tuple[str, str]] = []
        reports, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = fake_smsc_messages(self.fake_log, offset)
            count = int(requests.get(f"{self.sink_url}{SINK_COUNT_PATH}", timeout=BASELINE_TIMEOUT_SECONDS).text)
            if count != reports:
                reports, quiet_since = count, time.monotonic()
            if len(got) >= expected_messages and time.monotonic() - quiet_since >= KANNEL_QUIET_SECONDS:
                break
            time.sleep(PROGRESS_POLL_SECONDS * 4)
        return got


def start_kannel(children: Children, scratch: Path) -> KannelBox:
    """bearerbox, smsbox and the fake SMSC with the configuration `make dev` uses (devtools.kannel), on free ports,
    plus the delivery-report sink (bench/sink.py). Waits until the SMSC link is online."""
    boxes = devtools_kannel.binaries()
    if boxes is None or not Path(devtools_kannel.FAKESMSC).exists():
        raise RuntimeError(
            "the Kannel scenario needs bearerbox, smsbox and fakesmsc (apt-get install kannel kannel-extras)"
        )
    sink_port = common.free_port()
    children.start([sys.executable, str(common.PROJECT_ROOT / "bench" / "sink.py"), str(sink_port)])
    ports = devtools_kannel.KannelPorts(admin=common.free_port(), smsbox=common.free_port(), sendsms=common.free_port())
    fake_port = common.free_port()
    config = devtools_kannel.KannelConfig(
        scratch / "kannel",
        ports=ports,
        fake_links={KANNEL_SMSC_ID: fake_port},
        sender=devtools_kannel.SENDER,
        log_level=KANNEL_LOG_LEVEL,
    )
    config.write()
    bearerbox, smsbox = boxes
    children.start([bearerbox, str(config.path)], log=scratch / "bearerbox.out.log")
    if not devtools_kannel.wait_for_port(ports.smsbox):
        raise RuntimeError(f"bearerbox did not start; see {config.directory}/bearerbox.log")
    children.start([smsbox, str(config.path)], log=scratch / "smsbox.out.log")
    if not (devtools_kannel.wait_for_port(fake_port) and devtools_kannel.wait_for_port(ports.sendsms)):
        raise RuntimeError(f"smsbox did not start; see {config.directory}/smsbox.log")
    fake_log = scratch / "fakesmsc.log"
    children.start(devtools_kannel.fakesmsc_command(fake_port), log=fake_log)
    admin_url = f"http://{common.HOST}:{ports.admin}"
    box = KannelBox(ports.sendsms_url, admin_url, f"http://{common.HOST}:{sink_port}", fake_log)
    deadline = time.monotonic() + EMULATOR_START_TIMEOUT_SECONDS
    while KANNEL_ONLINE not in kannel_status(box):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fake SMSC never came online; see {config.directory}/bearerbox.log")
        time.sleep(0.1)
    return box


def kannel_status(box: KannelBox) -> str:
    try:
        return requests.get(
            f"{box.admin_url}/status.txt", params={"password": devtools_kannel.PASSWORD}, timeout=1
        ).text
    except requests.RequestException:
        return ""


def fake_smsc_messages(log: Path, offset: int) -> list[tuple[str, str]]:
    """The (number, text) pairs the fake SMSC printed after byte `offset` of its log."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    return [(match[1], match[2]) for match in map(FAKE_SMSC_LINE.search, lines) if match]


def kannel_env(env: dict[str, str], box: KannelBox) -> dict[str, str]:
    """The worker's settings with every number routed to one Kannel route through the run's smsbox, its rate so
    high it never binds, its delivery reports to the sink."""
    routed = {
        **env,
        "SMS_ROUTES": f"*={KANNEL_ROUTE}",
        "KANNEL_CALLBACK_URL": box.sink_url,
        KANNEL_SETTING.format(route=KANNEL_ROUTE.upper(), name="RATE_PER_SECOND"): str(UNLIMITED_RATE_PER_SECOND),
    }
    devtools_kannel.route_settings([KANNEL_ROUTE], box.sendsms_url, KANNEL_SMSC_ID, routed)
    return routed


def kannel_baseline(box: KannelBox, pairs: list[tuple[str, str]], settings: Settings) -> float:
    """The same sendsms requests the gateway's Kannel route makes (same fields, same dlr-url shape), in a plain
    loop on one keep-alive session; returns the seconds until the last one was answered 202."""
    [route] = settings.kannel_routes
    dlr = KannelProvider(route, settings.kannel_callback_url, settings.webhook_token)
    session = requests.Session()
    started = time.perf_counter()
    for index, (phone, text) in enumerate(pairs):
        params = {
            "username": route.username,
            "password": route.password,
            "to": phone,
            "text": text,
            "charset": KANNEL_CHARSET,
            "dlr-mask": KANNEL_DLR_MASK,
            "dlr-url": dlr.dlr_url(index + 1),
            "smsc": route.smsc,
        }
        response = session.get(f"{box.sendsms_url}{SENDSMS_PATH}", params=params, timeout=BASELINE_TIMEOUT_SECONDS)
        if response.status_code != HTTP_ACCEPTED:
            raise RuntimeError(f"smsbox answered the baseline {response.status_code}: {response.text[:200]}")
    return time.perf_counter() - started


def run_kannel(args, *, children: Children, scratch: Path, redis_url: str) -> ScenarioResult:
    """Start the private Kannel and run its scenario."""
    box = start_kannel(children, scratch)
    print(f"kannel: {args.messages} messages, unique texts, through smsbox {box.sendsms_url}...", flush=True)
    workload = Workload(args.messages, args.messages)
    return run_kannel_scenario(workload, args, children=children, scratch=scratch, redis_url=redis_url, box=box)


def run_kannel_scenario(
    workload: Workload, args, *, children: Children, scratch: Path, redis_url: str, box: KannelBox
) -> ScenarioResult:
    """Unique texts to N numbers (Kannel's sendsms takes one number a call, so texts do not batch): the plain loop,
    then the gateway's workers, each phase checked at the fake SMSC (every message once)."""
    connection = connect(redis_url)
    connection.flushdb()
    expected = workload.pairs()
    notes = []

    offset = box.fake_log.stat().st_size
    placeholder = worker_env("sqlite://", redis_url, box.sink_url, args.batch_size)
    cpu = common.MachineCpu()
    baseline_seconds = kannel_baseline(box, expected, load_settings(kannel_env(placeholder, box)))
    baseline_busy_cores = cpu.busy_cores()
    smsc_baseline = smsc_check(box.wait_until_idle(len(expected), offset), expected)
    if not smsc_baseline["exact"]:
        notes.append(f"baseline: the SMSC did not receive exactly the {workload.messages} messages")

    offset = box.fake_log.stat().st_size
    with FreshDatabase(args.database_url, scratch, "kannel") as fresh:
        db = Database(fresh.url)
        try:
            env = kannel_env(worker_env(fresh.url, redis_url, box.sink_url, args.batch_size), box)
            run = gateway(
                children,
                db,
                workload,
                workers=args.workers,
                env=env,
                connection=connection,
                log_dir=scratch,
                timeout=args.timeout,
            )
        finally:
            db.dispose()
    smsc_gateway = smsc_check(box.wait_until_idle(len(expected), offset), expected)
    if not smsc_gateway["exact"]:
        notes.append(f"gateway: the SMSC did not receive exactly the {workload.messages} messages")
    if run.seconds is None:
        notes.append(f"gateway: only {run.accepted} of {workload.messages} accepted within {args.timeout:.0f} s")

    baseline_rate = workload.messages / baseline_seconds
    gateway_rate = workload.messages / run.seconds if run.seconds else None
    ratio = gateway_rate / baseline_rate if gateway_rate else None
    return ScenarioResult(
        name="kannel",
        database=fresh.kind,
        messages=workload.messages,
        distinct_texts=workload.distinct_texts,
        batch_size=1,
        provider_calls=workload.messages,
        baseline_seconds=baseline_seconds,
        baseline_rate=baseline_rate,
        baseline_busy_cores=baseline_busy_cores,
        gateway_seconds=run.seconds,
        gateway_rate=gateway_rate,
        ratio=ratio,
        verdict="PASS" if ratio is not None and ratio >= RATIO_GOAL else "MISS",
        gateway_run=asdict(run),
        emulator_baseline=smsc_baseline,
        emulator_gateway=smsc_gateway,
        notes=notes,
    )


def smsc_check(got: list[tuple[str, str]], expected: list[tuple[str, str]]) -> dict:
    """Did the SMSC get exactly the expected (number, text) pairs, each once? The shape of `check_emulator`."""
    received, wanted = set(got), set(expected)
    return {
        "requests": len(got),
        "messages": len(got),
        "duplicates": len(got) - len(received),
        "missing": len(wanted - received),
        "unexpected": len(received - wanted),
        "exact": len(got) == len(wanted) and received == wanted,
    }


# -- the run -----------------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    name: str
    database: str
    messages: int
    distinct_texts: int
    batch_size: int
    provider_calls: int
    baseline_seconds: float
    baseline_rate: float
    baseline_busy_cores: float
    gateway_seconds: float | None
    gateway_rate: float | None
    ratio: float | None
    verdict: str
    gateway_run: dict
    emulator_baseline: dict
    emulator_gateway: dict
    notes: list[str] = field(default_factory=list)
    latency: float = 0.0  # the provider's, in seconds (± the run's jitter)
    # --floor: the SDK loop plus the exactly-once bookkeeping only (`floor`), over the same calls as the SDK loop.
    floor_seconds: float | None = None
    floor_rate: float | None = None
    floor_ratio: float | None = None  # floor / SDK loop: the most the gateway could reach
    gateway_floor_ratio: float | None = None  # gateway / floor: what the gateway's own machinery costs
    emulator_floor: dict | None = None


def run_floor(args, scratch: Path, name: str, emulator_url: str, workload: Workload, net: dict) -> tuple[float, dict]:
    """`floor` over the calls the SDK loop timed, in a fresh database of its own; returns the seconds and what the
    emulator received (which must be every message of those calls exactly once)."""
    batches = workload.batches(args.batch_size)
    timed = batches[:BASELINE_CALLS_AT_LATENCY] if net["latency"] else batches
    expected = {(phone, text) for text, phones in timed for phone in phones}
    with FreshDatabase(args.database_url, scratch, f"{name}-floor") as fresh:
        db = Database(fresh.url)
        try:
            write_outbox(db, workload)
            calls = floor_calls(db, timed)
            configure_emulator(emulator_url, max_in_flight=None, max_calls_per_second=None)
            try:
                seconds, accepted = floor(emulator_url, db, calls)
            finally:
                configure_emulator(emulator_url, **net)
        finally:
            db.dispose()
    received = check_emulator(emulator_url, expected)
    received["recorded_accepted"] = accepted
    received["exact"] = received["exact"] and accepted == len(expected)
    reset_emulator(emulator_url)
    return seconds, received


def run_scenario(
    name: str,
    workload: Workload,
    args,
    *,
    children: Children,
    scratch: Path,
    redis_url: str,
    emulator_url: str,
    latency: float = 0.0,
) -> ScenarioResult:
    connection = connect(redis_url)
    connection.flushdb()
    batches = workload.batches(args.batch_size)
    notes = []
    if latency:
        name = f"{name} {latency_label(latency)}"

    reset_emulator(emulator_url)
    baseline_seconds, baseline_busy_cores, baselined = capped_baseline(emulator_url, batches, network(args, latency))
    expected = set(workload.pairs())
    emulator_baseline = check_emulator(emulator_url, baselined)
    if not emulator_baseline["exact"]:
        notes.append(f"baseline: the emulator did not receive exactly the {len(baselined)} messages")
    reset_emulator(emulator_url)
    floor_seconds, emulator_floor = None, None
    if args.floor:
        floor_seconds, emulator_floor = run_floor(args, scratch, name, emulator_url, workload, network(args, latency))
        if not emulator_floor["exact"]:
            notes.append(f"floor: not exactly the {len(baselined)} messages, each once, recorded accepted")

    with FreshDatabase(args.database_url, scratch, name) as fresh:
        db = Database(fresh.url)
        try:
            env = worker_env(fresh.url, redis_url, emulator_url, args.batch_size)
            if args.rate:
                env["SMS_RATE_PER_SECOND"] = str(args.rate)
            run = gateway(
                children,
                db,
                workload,
                workers=args.workers,
                env=env,
                connection=connection,
                log_dir=scratch,
                timeout=args.timeout,
            )
        finally:
            db.dispose()
    emulator_gateway = check_emulator(emulator_url, expected)
    if not emulator_gateway["exact"]:
        notes.append(f"gateway: the emulator did not receive exactly the {workload.messages} messages")
    if run.seconds is None:
        notes.append(f"gateway: only {run.accepted} of {workload.messages} accepted within {args.timeout:.0f} s")
    reset_emulator(emulator_url)

    baseline_rate = len(baselined) / baseline_seconds
    gateway_rate = workload.messages / run.seconds if run.seconds else None
    ratio = gateway_rate / baseline_rate if gateway_rate else None
    floor_rate = len(baselined) / floor_seconds if floor_seconds else None
    return ScenarioResult(
        name=name,
        database=fresh.kind,
        messages=workload.messages,
        distinct_texts=workload.distinct_texts,
        batch_size=args.batch_size,
        provider_calls=len(batches),
        baseline_seconds=baseline_seconds,
        baseline_rate=baseline_rate,
        baseline_busy_cores=baseline_busy_cores,
        gateway_seconds=run.seconds,
        gateway_rate=gateway_rate,
        ratio=ratio,
        verdict="PASS" if ratio is not None and ratio >= RATIO_GOAL else "MISS",
        gateway_run=asdict(run),
        emulator_baseline=emulator_baseline,
        emulator_gateway=emulator_gateway,
        notes=notes,
        latency=latency,
        floor_seconds=floor_seconds,
        floor_rate=floor_rate,
        floor_ratio=floor_rate / baseline_rate if floor_rate else None,
        gateway_floor_ratio=gateway_rate / floor_rate if gateway_rate and floor_rate else None,
        emulator_floor=emulator_floor,
    )


def scenarios(args) -> list[tuple[str, Workload]]:
    """Unique texts and one shared text by default; `--distinct-texts K` runs that one mix instead; none with
    `--kannel`, whose scenario is its own (`run_kannel`)."""
    if args.kannel:
        return []
    if args.distinct_texts is not None:
        distinct = max(1, min(args.distinct_texts, args.messages))
        return [(f"{distinct}-texts", Workload(args.messages, distinct))]
    return [("unique-texts", Workload(args.messages, args.messages)), ("shared-text", Workload(args.messages, 1))]


def print_table(results: list[ScenarioResult], workers: int) -> None:
    header = (
        f"{'scenario':<14} {'db':<10} {'msgs':>6} {'calls':>6} {'gateway msg/s':>13} {'baseline msg/s':>14} "
        f"{'ratio':>6} {'goal':>5} {'peak RSS':>9} {'peak PSS':>9} {'worker HWM':>10} {'1st ms':>6} {'busy b/g':>9}"
    )
    print()
    print(f"SMS sending, {workers} worker process(es); goal: gateway / baseline >= {RATIO_GOAL}")
    print(header)
    print("-" * len(header))
    for result in results:
        run = result.gateway_run
        gateway_rate = f"{result.gateway_rate:.0f}" if result.gateway_rate else "timeout"
        ratio = f"{result.ratio:.2f}" if result.ratio is not None else "-"
        first = run["first_accepted_seconds"]
        first = f"{first * 1000:.0f}" if first is not None else "-"
        busy = f"{result.baseline_busy_cores:.1f}/{run['busy_cores']:.1f}"
        print(
            f"{result.name:<14} {result.database:<10} {result.messages:>6} {result.provider_calls:>6} "
            f"{gateway_rate:>13} {result.baseline_rate:>14.0f} {ratio:>6} {result.verdict:>5} "
            f"{run['peak_rss'] / MIB:>7.1f}Mi {run['peak_pss'] / MIB:>7.1f}Mi {run['worker_hwm'] / MIB:>8.1f}Mi "
            f"{first:>6} {busy:>9}"
        )
    for result in results:
        for note in result.notes:
            print(f"! {result.name}: {note}")
    print(
        "peak RSS/PSS: the worker process trees (worker, work-horses, RQ scheduler), sampled every "
        f"{MEMORY_POLL_SECONDS * 1000:.0f} ms; worker HWM: VmHWM of the worker process itself"
    )
    print(
        f"1st ms: from the kick to the first accepted message; busy b/g: cores busy machine-wide (of {os.cpu_count()}) "
        "during the baseline / gateway phase, everything included"
    )


def print_floor_table(results: list[ScenarioResult]) -> None:
    """SDK loop, floor and gateway side by side: floor / SDK loop is the most the gateway could reach under the
    exactly-once contract; gateway / floor is what its own machinery (RQ, Redis, rounds, window) costs."""
    print()
    print(f"The floor: the SDK loop plus only the exactly-once bookkeeping (goal gateway / SDK loop >= {RATIO_GOAL})")
    header = (
        f"{'scenario':<20} {'db':<10} {'SDK loop msg/s':>14} {'floor msg/s':>11} {'gateway msg/s':>13} "
        f"{'floor/SDK':>9} {'gw/floor':>8} {'gw/SDK':>6}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        if result.floor_rate is None:
            continue
        print(
            f"{result.name:<20} {result.database:<10} {result.baseline_rate:>14.0f} {result.floor_rate:>11.0f} "
            f"{(result.gateway_rate or 0.0):>13.0f} {result.floor_ratio:>9.2f} "
            f"{(result.gateway_floor_ratio or 0.0):>8.2f} "
            f"{(result.ratio or 0.0):>6.2f}"
        )


def print_network_table(results: list[ScenarioResult], args) -> None:
    """Per latency: the gateway's rate per worker against the SDK loop's, the busiest second at the provider, 429s."""
    rate = f"SMS_RATE_PER_SECOND={args.rate:g}" if args.rate else "no rate limit"
    overload = []
    if args.overload_in_flight:
        overload.append(f"429 above {args.overload_in_flight} calls in flight")
    if args.overload_rate:
        overload.append(f"429 above {args.overload_rate:g} calls/s")
    print()
    jitter = f"jitter ±{args.jitter * 1000:.0f} ms"
    print(f"Over the network: {args.workers} worker(s), {rate}, {jitter}; {', '.join(overload) or 'no 429s'}")
    header = (
        f"{'scenario':<20} {'latency':>7} {'gateway msg/s':>13} {'per worker':>10} {'SDK loop msg/s':>14} {'ratio':>6} "
        f"{'busiest 1 s':>11} {'429s':>5}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        gateway_rate = result.gateway_rate or 0.0
        print(
            f"{result.name:<20} {latency_label(result.latency):>7} {gateway_rate:>13.0f} "
            f"{gateway_rate / args.workers:>10.0f} {result.baseline_rate:>14.1f} "
            f"{(result.ratio or 0.0):>6.2f} {result.emulator_gateway['worst_second']:>11} "
            f"{result.emulator_gateway['refused_429']:>5}"
        )
    print("busiest 1 s: the most messages the provider took in any one-second window (every worker together)")


def results_document(results: list[ScenarioResult], args, profile: str | None) -> dict:
    return {
        "benchmark": "sms",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_description(brief=True),
        "options": {key: value for key, value in vars(args).items() if key != "database_url"},
        "database": "postgresql" if (args.database_url or "").startswith("postgresql") else "sqlite",
        "ratio_goal": RATIO_GOAL,
        "scenarios": [asdict(result) for result in results],
        "profile": profile,
    }


def add_worker_options(parser: argparse.ArgumentParser, timeout: float, timeout_help: str) -> None:
    """--redis-url, --workers and --timeout: bench/campaign.py runs the same workers and takes the same options."""
    parser.add_argument("--redis-url", help="default: an embedded Redis in a temporary directory")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=timeout, help=f"{timeout_help} (default %(default)s s)")


def _latencies(raw: str) -> list[float]:
    try:
        latencies = [float(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"latencies are comma-separated seconds, got {raw!r}") from None
    if not latencies or min(latencies) < 0:
        raise argparse.ArgumentTypeError("latencies must be zero or more seconds")
    return latencies


_DEFAULT_LATENCIES_TEXT = ",".join(f"{latency:g}" for latency in DEFAULT_LATENCIES)


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """--latency, --jitter and the emulator's overload limits: bench/campaign.py models the same network."""
    parser.add_argument(
        "--latency",
        type=_latencies,
        default=list(DEFAULT_LATENCIES),
        help=f"provider latencies to run every scenario at, seconds (default {_DEFAULT_LATENCIES_TEXT})",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=DEFAULT_JITTER_SECONDS,
        help="± seconds around each non-zero latency (default %(default)s)",
    )
    parser.add_argument("--overload-in-flight", type=int, help="the emulator answers 429 above this many calls at once")
    parser.add_argument("--overload-rate", type=float, help="the emulator answers 429 above this many calls a second")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/sms.py", description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", "--messages", type=int, help=f"messages per scenario (default {DEFAULT_MESSAGES})")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings().sms_batch_size,
        help="recipients per provider call, SMS_BATCH_SIZE (default %(default)s)",
    )
    parser.add_argument(
        "--distinct-texts",
        type=int,
        help="run one scenario with this many different texts (default: two scenarios, every text unique and one "
        "shared text)",
    )
    parser.add_argument(
        "--database-url",
        help="default: a temporary SQLite file; a PostgreSQL URL names the server, where a fresh database is created "
        "per scenario and dropped",
    )
    add_worker_options(parser, DEFAULT_SEND_TIMEOUT_SECONDS, "longest wait for the workers per scenario")
    add_network_options(parser)
    parser.add_argument(
        "--rate", type=float, help="SMS_RATE_PER_SECOND of the workers (default: high enough never to bind)"
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_MESSAGES} messages")
    parser.add_argument("--profile", action="store_true", help="also cProfile one in-process Dispatcher.drain")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also the floor: the SDK loop plus only the outbox's exactly-once bookkeeping (a claim and a record per "
        "call, in-process, same database), between the SDK loop and the gateway",
    )
    parser.add_argument(
        "--kannel",
        action="store_true",
        help=f"instead: the Kannel scenario, the gateway through a private bearerbox + smsbox (fake SMSC) vs a plain "
        f"sendsms loop, unique texts ({KANNEL_MESSAGES} messages unless -n, {QUICK_KANNEL_MESSAGES} with --quick)",
    )
    args = parser.parse_args(argv)
    if args.messages is None and args.kannel:
        args.messages = QUICK_KANNEL_MESSAGES if args.quick else KANNEL_MESSAGES
    if args.messages is None:
        args.messages = QUICK_MESSAGES if args.quick else DEFAULT_MESSAGES
    if not 0 < args.messages < 10**PHONE_DIGITS:
        parser.error(f"-n must be between 1 and {10**PHONE_DIGITS - 1}")
    if args.kannel and (args.profile or args.distinct_texts is not None):
        parser.error("--kannel runs its own scenario: no --profile or --distinct-texts with it")
    if args.batch_size < 1 or args.workers < 1:
        parser.error("--batch-size and --workers must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[ScenarioResult] = []
    profile = None
    with (
        common.temp_dir("sms") as scratch,
        Children() as children,
        common.ending_cleanly(
            "\ninterrupted; stopping the emulator and workers", failures=(RuntimeError,), logs=scratch
        ),
    ):
        redis_url = args.redis_url or ensure_embedded_redis(scratch / "redis")
        if args.kannel:
            # The Kannel scenario alone: its own smsbox, fake SMSC and plain loop, no emulator.
            results.append(run_kannel(args, children=children, scratch=scratch, redis_url=redis_url))
        else:
            emulator_url = start_emulator(children, scratch)
            warm_up(emulator_url)
            for latency in args.latency:
                configure_emulator(emulator_url, **network(args, latency))
                for name, workload in scenarios(args):
                    print(
                        f"{name} at {latency_label(latency)}: {workload.messages} messages, "
                        f"{workload.distinct_texts} text(s)...",
                        flush=True,
                    )
                    results.append(
                        run_scenario(
                            name,
                            workload,
                            args,
                            children=children,
                            scratch=scratch,
                            redis_url=redis_url,
                            emulator_url=emulator_url,
                            latency=latency,
                        )
                    )
            if args.profile:
                name, workload = scenarios(args)[0]
                connect(redis_url).flushdb()
                with FreshDatabase(args.database_url, scratch, "profile") as fresh:
                    db = Database(fresh.url)
                    try:
                        profile = profile_drain(db, workload, redis_url, emulator_url, args.batch_size)
                    finally:
                        db.dispose()
                reset_emulator(emulator_url)
    print_table(results, args.workers)
    if args.floor:
        print_floor_table(results)
    if not args.kannel:
        print_network_table(results, args)
    if profile:
        print("\n" + profile)
    print(f"results: {common.write_results('sms', results_document(results, args, profile))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
