"""The failover drill: the gateway as deployed on several nodes, on one machine over loopback, under faults.

    .venv/bin/python drill/run.py            # `make drill`: every fault, a 2-minute provider outage (~10 min)
    .venv/bin/python drill/run.py --short    # the CI run: shorter phases and a 20 s outage (~4 min)

What runs (each started here, stopped at the end, all on 127.0.0.1): HAProxy in front of two gunicorn web nodes
(deploy/gunicorn.conf.py, health checks on /readyz), two workers, a Redis primary with a replica and three
Sentinels (`REDIS_URL=redis+sentinel://…`), the provider emulator, and PostgreSQL: a scratch database on the
machine's server at 127.0.0.1:5432 when it answers, else a private cluster started with initdb/pg_ctl.

While callers walk the USSD menu (bench/ussd.py's simulated callers) and grant notices and campaign SMS are owed,
one fault a phase: a web node SIGKILLed, a worker SIGKILLed mid-batch, the Redis primary SIGKILLed, PostgreSQL
restarted, the provider down. PostgreSQL on the machine's shared server is never restarted: it serves others. The
drill then cuts its own database's connections instead (pg_terminate_backend on the drill's database only), which
is what a restart does to the gateway's pools; only a private cluster is really stopped and started.

A table per fault: hops ok / busy (the polite busy screen) / failed, SMS owed / sent / lost / doubled, and the time
to recover. The exit status is 1 on any lost or doubled SMS, or when more than 1 % of hops fail while a web node is
killed; 0 otherwise. The drain time after the provider outage is reported, not judged here: it depends on the
provider circuit breaker.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "bench")]

import common  # noqa: E402 - bench/ on the path first
import redis as redis_lib  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import ussd  # noqa: E402

from config.redis import connect  # noqa: E402
from models import Database  # noqa: E402
from models.grants import find_grant_by_reference  # noqa: E402
from models.messages import MessageKind, MessagePriority  # noqa: E402
from models.people import DISTRICTS, MainNeed, ReturnedFrom, Sex, get_or_create_contact  # noqa: E402
from models.registration import RegistrationAnswers, register_beneficiary  # noqa: E402
from notifications.casework.grants import change_grant_status  # noqa: E402
from notifications.sms.outbox import owe_text  # noqa: E402
from notifications.sms.queues import kick  # noqa: E402

HOST = common.HOST
SENTINEL_MASTER = "gateway"
SENTINELS = 3
SENTINEL_QUORUM = 2
# Sentinel: a primary silent this long is down; then a failover may take this long before another is tried.
SENTINEL_DOWN_AFTER_MS = 2000
SENTINEL_FAILOVER_TIMEOUT_MS = 10000
POSTGRES_SERVER_URL = os.environ.get("DRILL_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/postgres")
START_SECONDS = 40
# The bounds: web nodes and workers follow a Redis failover within 30 s; fewer than 1 % of hops fail when a
# web node dies; the provider's backlog drains within 15 s of its recovery.
FOLLOW_BOUND_SECONDS = 30
WEB_KILL_MAX_FAILED_SHARE = 0.01
DRAIN_BOUND_SECONDS = 15
# How long a phase waits for everything it owed to reach the provider after its fault is over.
SETTLE_SECONDS = 120
# Concurrent simulated callers; each waits this long between hops (a person reading the screen, shortened).
CALLERS = 12
THINK_SECONDS = 0.05
# SMS owed per phase: grant notices (transactional) and campaign messages (bulk).
NOTICES_PER_PHASE = 20
CAMPAIGN_PER_PHASE = 60
WEBHOOK_TOKEN = "drill-webhook-token-" + "x" * 24
# bench/ussd.py's callers send its token; production wants a longer one, so the drill's callers send the drill's.
ussd.WEBHOOK_TOKEN = WEBHOOK_TOKEN
API_KEY = "drill-key"


def data_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# --- processes --------------------------------------------------------------------------------------------------------


class Processes:
    """Every process the drill starts, by name, each in its own process group; logs under the run's directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.running: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict]] = {}

    def start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        self.commands[name] = (command, env or dict(os.environ))
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        process = subprocess.Popen(
            command,
            env=env or dict(os.environ),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running[name] = process
        return process

    def restart(self, name: str) -> subprocess.Popen:
        command, env = self.commands[name]
        return self.start(name, command, env)

    def kill(self, name: str) -> None:
        """SIGKILL to the whole group: a gunicorn master and its workers, a worker and anything it started."""
        process = self.running[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for process in reversed(list(self.running.values())):
            common.stop_process_group(process)


def wait_until(condition, seconds: float, interval: float = 0.1) -> float | None:
    """Seconds it took for `condition()` to hold, or None if it did not within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if condition():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - a probe of something that is down
            pass
        time.sleep(interval)
    return None


def http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def post_json(url: str, document: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


class Postgres:
    """The drill's database: a scratch one on the machine's server, else a private cluster (which it may restart)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.private = False
        self.scratch: common.ScratchPostgres | None = None
        self.port = 5432

    def start(self) -> str:
        try:
            self.scratch = common.ScratchPostgres(POSTGRES_SERVER_URL, "drill").create()
            return self.scratch.url
        except sa.exc.OperationalError:
            pass
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = shutil.which("initdb") or (str(binaries[-1]) if binaries else None)
        if initdb is None:
            raise SystemExit("drill: no PostgreSQL at 127.0.0.1:5432 and no initdb to start one; skipped")
        self.private = True
        self.pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.data = self.directory / "pgdata"
        self.port = common.free_port()
        subprocess.run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
        self._pg_ctl("start")
        admin = f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres"
        common.admin_execute(admin, 'CREATE DATABASE "drill"')
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/drill"

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses={HOST}"
        command = [self.pg_ctl, "-D", str(self.data), "-w", "-l", str(self.directory / "postgres.log")]
        subprocess.run(
            [*command, "-o", options, action] if action != "stop" else [*command, "-m", "fast", action],
            check=True,
            capture_output=True,
        )

    def interrupt(self, down_seconds: float) -> str:
        """The fault: a real restart of a private cluster; on the shared server, the drill's connections cut."""
        if self.private:
            self._pg_ctl("stop")
            time.sleep(down_seconds)
            self._pg_ctl("start")
            return "private cluster stopped and started"
        name = self.scratch.name
        common.admin_execute(
            POSTGRES_SERVER_URL,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
        return "shared server: the drill database's connections terminated (never a restart)"

    def stop(self) -> None:
        if self.scratch is not None:
            self.scratch.drop()
        if self.private:
            self._pg_ctl("stop")


# --- the deployment --------------------------------------------------------------------------------------------------


@dataclass
class Ports:
    haproxy: int = field(default_factory=common.free_port)
    web: tuple[int, int] = field(default_factory=lambda: (common.free_port(), common.free_port()))
    worker_http: tuple[int, int] = field(default_factory=lambda: (common.free_port(), common.free_port()))
    redis: tuple[int, int] = field(default_factory=lambda: (common.free_port(), common.free_port()))
    sentinels: tuple[int, ...] = field(default_factory=lambda: tuple(common.free_port() for _ in range(SENTINELS)))
    emulator: int = field(default_factory=common.free_port)


class Deployment:
    def __init__(self, directory: Path, args: argparse.Namespace):
        self.directory = directory
        self.args = args
        self.ports = Ports()
        self.processes = Processes(directory)
        self.postgres = Postgres(directory)
        self.redis_url = ",".join(f"{HOST}:{port}" for port in self.ports.sentinels)
        self.redis_url = f"redis+sentinel://{self.redis_url}/{SENTINEL_MASTER}/0"
        self.base = f"http://{HOST}:{self.ports.haproxy}"
        self.emulator = f"http://{HOST}:{self.ports.emulator}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            APP_ENV="production",
            SECRET_KEY=data_key(),
            WEBHOOK_TOKEN=WEBHOOK_TOKEN,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DATA_ENCRYPTION_KEY=self.data_keys[0],
            DATA_HASH_KEY=self.data_keys[1],
            AT_API_BASE_URL=self.emulator,
            AT_USERNAME="drill",
            AT_API_KEY=API_KEY,
            USSD_SERVICE_CODE=ussd.SERVICE_CODE,
            SMS_RATE_PER_SECOND="40",
            SMS_BATCH_SIZE="10",
            QUIET_HOURS="",
            SWEEP_INTERVAL_SECONDS="2",
            SMS_CLAIM_TIMEOUT_SECONDS="10",
            SMS_UNKNOWN_OUTCOME_SECONDS="20",
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",
            GUNICORN_WORKERS="1",
            GUNICORN_THREADS="4",
        )
        if self.args.short:
            env["SMS_RETRY_BACKOFF_SECONDS"] = "2,4,8,16,32,64"
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    def start(self) -> None:
        self.database_url = self.postgres.start()
        self.data_keys = (data_key(), data_key())
        self._start_redis()
        env = self.env()
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        report_url = f"{self.base}/webhooks/at/sms/delivery?token={WEBHOOK_TOKEN}"
        self.processes.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "devtools.emulator",
                "--host",
                HOST,
                "--port",
                str(self.ports.emulator),
                "--delivery-report-url",
                report_url,
                "--report-delay",
                "0.2",
            ],
            env,
        )
        for index, port in enumerate(self.ports.web):
            self.processes.start(
                f"web{index + 1}",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py"),
                    "--bind",
                    f"{HOST}:{port}",
                    "--no-control-socket",
                    "wsgi:app",
                ],
                env,
            )
        for index, port in enumerate(self.ports.worker_http):
            self.processes.start(
                f"worker{index + 1}",
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "wsgi",
                    "worker",
                    "--metrics-port",
                    str(port),
                    "--metrics-host",
                    HOST,
                ],
                env,
            )
        self._start_haproxy()
        for port in self.ports.web:
            if wait_until(lambda port=port: http_status(f"http://{HOST}:{port}/readyz") == 200, START_SECONDS) is None:
                raise RuntimeError(f"web node on {port} never became ready; see {self.directory}")
        for port in self.ports.worker_http:
            if wait_until(lambda port=port: http_status(f"http://{HOST}:{port}/healthz") == 200, START_SECONDS) is None:
                raise RuntimeError(f"worker on {port} never answered /healthz; see {self.directory}")
        if wait_until(lambda: http_status(f"{self.base}/readyz") == 200, START_SECONDS) is None:
            raise RuntimeError("HAProxy never reported a ready backend")
        self.db = Database(self.database_url)
        self.redis = connect(self.redis_url)

    def _start_redis(self) -> None:
        primary, replica = self.ports.redis
        for name, port in (("redis-primary", primary), ("redis-replica", replica)):
            (self.directory / name).mkdir()
            command = [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(port),
                "--bind",
                HOST,
                "--dir",
                str(self.directory / name),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ]
            if port == replica:
                command += ["--replicaof", HOST, str(primary)]
            self.processes.start(name, command)
        for index, port in enumerate(self.ports.sentinels):
            config = self.directory / f"sentinel{index + 1}.conf"
            config.write_text(
                f"port {port}\nbind {HOST}\ndir {self.directory}\n"
                f"sentinel monitor {SENTINEL_MASTER} {HOST} {primary} {SENTINEL_QUORUM}\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} {SENTINEL_FAILOVER_TIMEOUT_MS}\n"
            )
            self.processes.start(f"sentinel{index + 1}", [shutil.which("redis-sentinel"), str(config)])
        probe = connect(f"redis://{HOST}:{replica}/0")
        if wait_until(lambda: probe.info("replication")["master_link_status"] == "up", START_SECONDS) is None:
            raise RuntimeError("the Redis replica never synced")

    def _start_haproxy(self) -> None:
        template = (PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
        # As deploy/haproxy/haproxy.cfg: a checked line per node, and an unchecked last-resort backup of it.
        web = "\n".join(
            f"    server web{index + 1} {HOST}:{port} check\n    server web{index + 1}-last-resort {HOST}:{port} backup"
            for index, port in enumerate(self.ports.web)
        )
        config = template.split("# --- servers ---")[0]
        config = config.replace("    bind :80\n", f"    bind {HOST}:{self.ports.haproxy}\n").replace(
            "    bind :443\n", ""
        )
        config = config.replace("log /dev/log local0", "log stderr format raw local0") + web + "\n"
        path = self.directory / "haproxy.cfg"
        path.write_text(config)
        subprocess.run(
            [shutil.which("haproxy") or "/usr/sbin/haproxy", "-c", "-f", str(path)], check=True, capture_output=True
        )
        self.processes.start("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(path)])

    def stop(self) -> None:
        self.processes.stop_all()
        if hasattr(self, "db"):
            self.db.dispose()
        self.postgres.stop()

    def current_primary_port(self) -> int:
        sentinel = connect(f"redis://{HOST}:{self.ports.sentinels[0]}/0")
        return int(sentinel.sentinel_master(SENTINEL_MASTER)["port"])


# --- load: USSD callers and owed SMS ---------------------------------------------------------------------------------


class UssdLoad(threading.Thread):
    """bench/ussd.py's callers through HAProxy, without pause; every hop recorded as (time, ok / busy / failed)."""

    def __init__(self, port: int):
        super().__init__(name="ussd-load", daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.hops: list[tuple[float, str]] = []
        self.errors: list[tuple[float, str]] = []  # what a failed hop got: http_500, http_503, http_0 (no answer)
        self.population = ussd.Population(seed=7, check_flow=False)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._caller() for _ in range(CALLERS)))

    async def _caller(self) -> None:
        connection = ussd.Connection(self.port)
        while not self.stop.is_set():
            session = self.population.next_session()
            while not session.done and not self.stop.is_set():
                body = session.body()
                try:
                    status, answer = await asyncio.wait_for(connection.post(body), ussd.REQUEST_TIMEOUT_SECONDS)
                except (TimeoutError, OSError, ussd.HttpError, asyncio.IncompleteReadError):
                    connection.close()
                    status, answer = 0, b""
                error = session.check(status, answer, check_flow=False)
                outcome = "failed" if error else "busy" if b"service is busy" in answer else "ok"
                self.hops.append((time.monotonic(), outcome))
                if error:
                    self.errors.append((time.monotonic(), error))
                await asyncio.sleep(THINK_SECONDS)
                if outcome != "ok":
                    break
            self.population.finish(session)
        connection.close()

    def errors_between(self, start: float, end: float) -> Counter:
        return Counter(error for moment, error in list(self.errors) if start <= moment <= end)

    def last_trouble_after(self, start: float) -> float:
        """Seconds from `start` to the last hop after it that did not get its screen (0 when none)."""
        troubled = [moment for moment, outcome in list(self.hops) if moment >= start and outcome != "ok"]
        return max(troubled) - start if troubled else 0.0

    def between(self, start: float, end: float) -> Counter:
        return Counter(outcome for moment, outcome in list(self.hops) if start <= moment <= end)


@dataclass
class Owed:
    """What a phase owed the provider: (phone, text) pairs, as the emulator records them."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)


class Ledger:
    """Owes SMS the way the gateway does (grant notices through the grant move, campaign messages as bulk)."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.serial = 0

    def _phone(self) -> str:
        self.serial += 1
        return f"+26657{self.serial:06d}"

    def owe(self, phase: str, owed: Owed, notices: int, campaign: int) -> None:
        """Owe `notices` grant notices and `campaign` campaign messages; a write cut by a database fault is made
        again (it was rolled back, so nothing was owed), as a caller of the gateway would."""
        for _ in range(notices):
            owed.phones.add(_retrying(self._notice))
        for index in range(campaign):
            phone = self._phone()
            text = f"Drill {phase} campaign message {index}: training in Maseru on Monday."
            _retrying(lambda phone=phone, text=text: self._campaign_message(phone, text))
            owed.pairs.add((phone, text))
        for priority in (MessagePriority.TRANSACTIONAL, MessagePriority.BULK):
            with contextlib.suppress(redis_lib.RedisError):  # mid-failover: the workers' sweep enqueues it later
                kick(self.deployment.redis, priority)

    def _notice(self) -> str:
        """A new beneficiary's grant approved: one notice owed, to a number of its own (each try takes a new one)."""
        phone = self._phone()
        with self.deployment.db.session() as session:
            reference = register_beneficiary(session, phone, _answers(), "en").reference
        with self.deployment.db.session() as session:
            grant = find_grant_by_reference(session, reference)
            change_grant_status(session, grant, "under_review", actor="drill")
            change_grant_status(session, grant, "approved", actor="drill", amount=Decimal("1500"))
        return phone

    def _campaign_message(self, phone: str, text: str) -> None:
        with self.deployment.db.session() as session:
            contact = get_or_create_contact(session, phone)
            owe_text(session, contact, MessageKind.CAMPAIGN, text, priority=MessagePriority.BULK)

    def received(self) -> list[dict]:
        return get_json(f"{self.deployment.emulator}/_emulator/messages")["messages"]


def _retrying(write, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return write()
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _answers() -> RegistrationAnswers:
    return RegistrationAnswers(
        full_name="Palesa Mokoena",
        sex=Sex.FEMALE,
        year_of_birth=1988,
        district=DISTRICTS[4],
        village="Roma",
        returned_from=ReturnedFrom.SOUTH_AFRICA,
        year_of_return=2020,
        national_id=None,
        household_size=4,
        main_need=MainNeed.BUSINESS,
    )


# --- the faults ------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    hops: Counter
    owed: int = 0
    sent: int = 0
    lost: int = 0
    doubled: int = 0
    recovered_seconds: float | None = None
    note: str = ""
    failed_checks: list[str] = field(default_factory=list)


class Drill:
    def __init__(self, deployment: Deployment, args: argparse.Namespace):
        self.deployment = deployment
        self.args = args
        self.load = UssdLoad(deployment.ports.haproxy)
        self.ledger = Ledger(deployment)
        self.results: list[Result] = []
        self.phase_seconds = 15 if args.short else 40

    def run(self) -> list[Result]:
        self.load.start()
        try:
            time.sleep(2)
            self.phase("web node killed", self.kill_web)
            self.phase("worker killed mid-batch", self.kill_worker, campaign=CAMPAIGN_PER_PHASE * 2)
            self.phase("Redis primary killed", self.kill_redis_primary)
            self.phase("PostgreSQL restarted", self.restart_postgres)
            self.phase("provider down", self.provider_outage)
        finally:
            self.load.stop.set()
            self.load.join(timeout=30)
        return self.results

    def phase(self, name: str, fault, campaign: int = CAMPAIGN_PER_PHASE) -> None:
        print(f"drill: {name} ...", flush=True)
        owed = Owed()
        started = time.monotonic()
        result = Result(name, Counter())
        fault_thread = threading.Thread(target=lambda: fault(result, owed), daemon=True)
        fault_thread.start()
        self.ledger.owe(name.replace(" ", "-"), owed, NOTICES_PER_PHASE // 2, campaign // 2)
        time.sleep(1)
        self.ledger.owe(
            name.replace(" ", "-") + "-b", owed, NOTICES_PER_PHASE - NOTICES_PER_PHASE // 2, campaign - campaign // 2
        )
        fault_thread.join()
        remaining = self.phase_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        result.hops = self.load.between(started, time.monotonic())
        errors = self.load.errors_between(started, time.monotonic())
        if errors:
            result.note += "; failed hops: " + ", ".join(f"{count} {kind}" for kind, count in errors.most_common())
        self.settle(result, owed)
        self.results.append(result)

    def settle(self, result: Result, owed: Owed) -> None:
        """Wait until every owed SMS reached the provider (or SETTLE_SECONDS pass), then count lost and doubled."""
        expected = len(owed.pairs) + len(owed.phones)

        def arrived() -> tuple[int, Counter]:
            messages = self.ledger.received()
            pairs = Counter((m["phone"], m["text"]) for m in messages)
            got = sum(1 for pair in owed.pairs if pair in pairs)
            got += sum(1 for phone in owed.phones if any(p == phone for p, _ in pairs))
            return got, pairs

        wait_until(lambda: arrived()[0] == expected, SETTLE_SECONDS, interval=0.5)
        time.sleep(3)  # a few sweeps more: anything sent twice shows now
        got, pairs = arrived()
        mine = {pair: count for pair, count in pairs.items() if pair in owed.pairs or pair[0] in owed.phones}
        result.owed, result.sent = expected, got
        result.lost = expected - got
        result.doubled = sum(count - 1 for count in mine.values() if count > 1)

    # -- faults: each records the time to recover ---------------------------------------------------------------------

    def kill_web(self, result: Result, owed: Owed) -> None:
        time.sleep(2)
        killed_at = time.monotonic()
        self.deployment.processes.kill("web1")
        # Recovered: hops keep succeeding through HAProxy on the other node.
        time.sleep(self.phase_seconds / 2)
        counts = self.load.between(killed_at, time.monotonic())
        total = sum(counts.values())
        result.recovered_seconds = self.load.last_trouble_after(killed_at)
        if total and counts["failed"] / total >= WEB_KILL_MAX_FAILED_SHARE:
            result.failed_checks.append(f"{counts['failed']} of {total} hops failed (bound 1 %)")
        self.deployment.processes.restart("web1")
        port = self.deployment.ports.web[0]
        wait_until(lambda: http_status(f"http://{HOST}:{port}/readyz") == 200, START_SECONDS)
        result.note = "HAProxy retries and redispatches; the node is restarted after"

    def kill_worker(self, result: Result, owed: Owed) -> None:
        before = len(self.ledger.received())
        wait_until(lambda: len(self.ledger.received()) > before + 10, 30, interval=0.05)
        self.deployment.processes.kill("worker1")
        killed_at = time.monotonic()
        sent_then = len(self.ledger.received())
        recovered = wait_until(lambda: len(self.ledger.received()) > sent_then + 5, 60)
        result.recovered_seconds = recovered
        result.note = f"killed after {sent_then - before} sends of the batch"
        time.sleep(max(0.0, 2 - (time.monotonic() - killed_at)))
        self.deployment.processes.restart("worker1")

    def kill_redis_primary(self, result: Result, owed: Owed) -> None:
        time.sleep(1)
        old = self.deployment.current_primary_port()
        name = "redis-primary" if old == self.deployment.ports.redis[0] else "redis-replica"
        self.deployment.processes.kill(name)
        killed_at = time.monotonic()
        promoted = wait_until(lambda: self.deployment.current_primary_port() != old, FOLLOW_BOUND_SECONDS * 2)
        probe = Owed()

        def followed() -> bool:
            """A hop answered CON through HAProxy, and an SMS owed now reached the provider."""
            if http_status(f"{self.deployment.base}/readyz") != 200:
                return False
            if not probe.pairs:
                self.ledger.owe("redis-probe", probe, 0, 1)
                owed.pairs |= probe.pairs
            sent = {(m["phone"], m["text"]) for m in self.ledger.received()}
            return probe.pairs <= sent

        followed_after = wait_until(followed, FOLLOW_BOUND_SECONDS * 2, interval=0.5)
        result.recovered_seconds = None if followed_after is None else time.monotonic() - killed_at
        result.note = f"Sentinel promoted the replica after {promoted:.1f} s" if promoted else "no promotion"
        if result.recovered_seconds is None or result.recovered_seconds > FOLLOW_BOUND_SECONDS:
            result.failed_checks.append(f"web and workers did not follow within {FOLLOW_BOUND_SECONDS} s")
        # The old primary comes back as a replica of the new one, as a restarted server would under Sentinel.
        self.deployment.processes.restart(name)

    def restart_postgres(self, result: Result, owed: Owed) -> None:
        time.sleep(1)
        started = time.monotonic()
        result.note = self.deployment.postgres.interrupt(down_seconds=5)
        recovered = wait_until(lambda: http_status(f"{self.deployment.base}/readyz") == 200, 60)
        result.recovered_seconds = None if recovered is None else time.monotonic() - started

    def provider_outage(self, result: Result, owed: Owed) -> None:
        outcomes = f"{self.deployment.emulator}/_emulator/outcomes"
        post_json(outcomes, {"default": "http_500"})
        time.sleep(self.args.provider_outage_seconds)
        post_json(outcomes, {"default": "delivered"})
        recovered_at = time.monotonic()
        expected = lambda: len(owed.pairs) + len(owed.phones)  # noqa: E731
        sent = lambda: {(m["phone"], m["text"]) for m in self.ledger.received()}  # noqa: E731

        def drained() -> bool:
            got = sent()
            phones = {phone for phone, _ in got}
            return len(owed.pairs & got) + len(owed.phones & phones) == expected()

        drain = wait_until(drained, SETTLE_SECONDS, interval=0.2)
        result.recovered_seconds = drain
        held = "within" if drain is not None and drain <= DRAIN_BOUND_SECONDS else "NOT within"
        result.note = (
            f"{self.args.provider_outage_seconds:.0f} s outage; backlog drained {held} {DRAIN_BOUND_SECONDS} s"
        )
        _ = recovered_at


# --- the report ------------------------------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    header = ("fault", "hops ok", "busy", "failed", "SMS owed", "sent", "lost", "doubled", "recovered")
    rows = [header]
    for r in results:
        recovered = "-" if r.recovered_seconds is None else f"{r.recovered_seconds:.1f} s"
        rows.append(
            (r.fault, r.hops["ok"], r.hops["busy"], r.hops["failed"], r.owed, r.sent, r.lost, r.doubled, recovered)
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for r in results:
        if r.note:
            print(f"- {r.fault}: {r.note}")
        for check in r.failed_checks:
            print(f"- {r.fault}: FAILED: {check}")


def verdict(results: list[Result]) -> int:
    bad = [r for r in results if r.lost or r.doubled or r.failed_checks]
    for r in bad:
        print(f"drill: {r.fault}: {r.lost} lost, {r.doubled} doubled, {'; '.join(r.failed_checks) or 'no other'}")
    return 1 if bad else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="shorter phases and outage, for CI (a few minutes)")
    parser.add_argument(
        "--provider-outage-seconds",
        type=float,
        default=None,
        help="how long the provider is down (default 120, or 20 with --short)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, configs)")
    args = parser.parse_args(argv)
    if args.provider_outage_seconds is None:
        args.provider_outage_seconds = 20.0 if args.short else 120.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The drill's own writes meet the faults too; what the gateway logs about them is in its nodes' logs.
    logging.getLogger().setLevel(logging.CRITICAL)
    for tool in ("haproxy", "redis-server", "redis-sentinel"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"drill: {tool} is not installed (Debian: apt-get install haproxy redis-server redis-sentinel)")
            return 1
    with (
        common.temp_dir("drill", keep=args.keep) as directory,
        common.ending_cleanly(
            "drill interrupted", failures=(RuntimeError, subprocess.CalledProcessError), logs=directory
        ),
    ):
        deployment = Deployment(directory, args)
        try:
            deployment.start()
            results = Drill(deployment, args).run()
        finally:
            deployment.stop()
    print_table(results)
    return verdict(results)


if __name__ == "__main__":
    sys.exit(main())
