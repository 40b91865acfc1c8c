"""USSD callback benchmark: the gateway under gunicorn against a constant-answer Flask app, in the same run.

Why this shape: an absolute hops/s figure says little on its own (it moves with the machine, the Python build and
whatever else runs), so the gateway is measured beside a minimal Flask app that answers `CON constant` under the very
same gunicorn settings, one after the other, with the same load generator. The ratio is what the goal is about.

    .venv/bin/python bench/ussd.py            # ~80 s: SQLite in a temp dir, embedded Redis
    .venv/bin/python bench/ussd.py --quick    # ~20 s smoke run
    .venv/bin/python bench/ussd.py --database-url postgresql+psycopg://127.0.0.1:5432/test

Per app, two measurements:
- max throughput: a closed loop of `--concurrency` virtual users, each on its own keep-alive connection, sending a
  hop as soon as the previous one is answered;
- fixed rate: an open loop at `--rate` hops/s (Poisson arrivals). Latency is measured from the *scheduled* send
  time, so a slow answer that delays the next sends is counted in full (no coordinated omission).

Virtual users walk the real menu (language, registration one question a screen with some invalid answers and `0`,
grant status, COVID-19 pages with `98`, alerts, contact us, `00`), with cumulative `text` as Africa's Talking sends
it, a fresh sessionId per session and a fresh Lesotho mobile number per person. Every answer must be `200` with
`CON …`/`END …`; for the gateway each session must also end on `END` exactly at its last step.

Redis commands per hop come from `INFO commandstats` before and after each gateway phase; `total_reads_processed`
(one per client request batch) approximates round trips. With the embedded Redis the counts are the gateway's alone.

Results go to stdout and to `bench/results/ussd-<time>.json` (git-ignored). The exit status is 0 whenever the
benchmark ran, goals met or not: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import common

USSD_PATH = "/webhooks/at/ussd"

# The goals of the issue.
GOAL_THROUGHPUT_RATIO = 0.5  # gateway hops/s at least this share of the baseline's
GOAL_P99_MS = 50.0  # gateway p99 at the fixed rate under this
DEFAULT_RATE = 200.0  # hops/s of the fixed-rate phase

# Defaults for a full run (seconds) and for --quick.
DEFAULT_DURATION_SECONDS = 15.0
DEFAULT_WARMUP_SECONDS = 3.0
QUICK_DURATION_SECONDS = 3.0
QUICK_WARMUP_SECONDS = 1.0
# Closed-loop virtual users: twice the server's request slots (2 workers x 4 threads), so it never idles.
DEFAULT_CONCURRENCY = 16
# gunicorn: one worker per core; gthread because sync workers close the connection after every request.
WORKER_CLASS = "gthread"
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
KEEP_ALIVE_SECONDS = 5
# Open loop: sessions interleaved at once (real callers think between hops), and the connection pool ceiling.
OPEN_LOOP_SESSIONS = 200
OPEN_LOOP_CONNECTIONS = 32

# One hop must answer within this, else it is an error (the provider gives up after a few seconds too).
REQUEST_TIMEOUT_SECONDS = 10.0
SERVER_START_TIMEOUT_SECONDS = 30.0
# Seconds to wait for the open loop's last answers after the last scheduled send.
DRAIN_TIMEOUT_SECONDS = 15.0

# What the simulated provider sends; the gateway is started with the same code and webhook token.
SERVICE_CODE = "*120*123#"
WEBHOOK_TOKEN = "bench-webhook-token"
NETWORK_CODES = ("65101", "65102")  # Vodacom Lesotho, Econet Telecom Lesotho
PHONE_PREFIXES = ("+26658", "+26662")  # a Vodacom and an Econet mobile range
PHONE_SUFFIX_DIGITS = 6
# An END after a registration carries the 8-digit reference.
REFERENCE_PATTERN = re.compile(rb"\d{8}")

# How virtual users behave (probabilities).
P_NEW_PERSON = 0.45  # a session from a number the gateway has never seen
P_RESUME = 0.6  # a person with an unfinished registration dials again before anyone else
P_SESOTHO = 0.3
P_INVALID = 0.1  # an invalid answer before the valid one, per question
P_BACK = 0.05  # `0` then the previous answer again, per question
P_DROP = 0.08  # the session drops mid-registration (no END), per session
P_DECLINE = 0.05  # declines consent
P_SKIP_ID = 0.3  # skips the optional national ID with 99
P_CONFIRM_PAGES = 0.5  # pages the confirm screen with 98 before confirming
QUESTION_COUNT = 10  # the registration questions before consent (menus.registration.QUESTIONS)

NAMES = ("Thabo Mokoena", "Palesa Nthati", "Lerato Mofokeng", "Mpho Letsie", "Teboho Mohale", "Lineo Ramoholi")
VILLAGES = ("Ha Abia", "Roma", "Mazenod", "Ha Thetsane", "Morija", "Semonkong", "Hlotse")
PROBLEMS = ("No SMS after registration", "Money not received", "Wrong district saved")
INVALID_ANSWERS = ("12345", "3", "19x5", "11", "1", "5", "1900", "ab", "45", "9")

BASELINE_MODULE = '''\
"""The baseline: a minimal Flask app answering a constant USSD screen, to measure the server and the client."""
from flask import Flask, Response

app = Flask(__name__)


@app.post("/webhooks/at/ussd")
def ussd():
    return Response("CON constant", mimetype="text/plain")
'''

FLOOR_MODULE = '''\
"""The Redis floor: a minimal Flask app that reads the form and makes the two Redis round trips the USSD contract
asks of every hop (one MGET, one write), with redis-py as any app would, then answers a constant screen. Information
only: what the gateway's hop costs beyond the framework and the contract's Redis work."""
import os

import redis
from flask import Flask, Response, request

app = Flask(__name__)
client = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.post("/webhooks/at/ussd")
def ussd():
    session_id, phone = request.form["sessionId"], request.form["phoneNumber"]
    session_key = f"floor:session:{session_id}"
    client.mget([session_key, f"floor:draft:{phone}", f"floor:language:{phone}"])
    pipe = client.pipeline(transaction=False)
    pipe.set(session_key, request.form.get("text", ""), ex=60)
    pipe.execute()
    return Response("CON constant", mimetype="text/plain")
'''


# --- Simulated callers -------------------------------------------------------------------------------------------


@dataclass
class Person:
    """A caller, and what the gateway should know about them after their previous sessions."""

    phone: str
    network: str
    language: str | None = None  # "1" English or "2" Sesotho once chosen
    registered: bool = False
    draft: int = 0  # registration questions answered in a dropped session
    answers: list[str] = field(default_factory=list)


@dataclass
class Step:
    answer: str | None  # None: the dial (text "")
    end: bool = False  # this answer must be answered with END (and only this one)
    reference: bool = False  # the END must carry the registration reference


class Session:
    """One USSD session: its script of answers, walked one hop at a time with cumulative `text`."""

    def __init__(self, person: Person, steps: list[Step], outcome: dict):
        self.person = person
        self.steps = steps
        self.outcome = outcome  # changes to `person` once the session ran to its end
        self.session_id = f"ATUid_bench_{uuid.uuid4().hex}"
        self.index = 0
        self.text = ""
        self.failed = False

    @property
    def done(self) -> bool:
        return self.failed or self.index >= len(self.steps)

    def body(self) -> bytes:
        answer = self.steps[self.index].answer
        if answer is not None:
            self.text = f"{self.text}*{answer}" if self.text else answer
        form = {
            "sessionId": self.session_id,
            "serviceCode": SERVICE_CODE,
            "phoneNumber": self.person.phone,
            "networkCode": self.person.network,
            "text": self.text,
        }
        return urlencode(form).encode()

    def check(self, status: int, body: bytes, check_flow: bool) -> str | None:
        """Advance past the hop just answered; the kind of error, or None when the answer is what the menu owes."""
        step = self.steps[self.index]
        self.index += 1
        error = None
        if status != 200:
            error = f"http_{status}"
        elif not (body.startswith(b"CON ") or body.startswith(b"END ")):
            error = "not_con_end"
        elif check_flow:
            is_end = body.startswith(b"END ")
            if is_end and not step.end:
                error = "early_end"
            elif step.end and not is_end:
                error = "missing_end"
            elif step.reference and not REFERENCE_PATTERN.search(body):
                error = "no_reference"
        if error:
            self.failed = True
        return error


class Population:
    """The callers of one app: new numbers, and the people seen before, each in at most one session at a time.

    State is tracked from the scripts (optimistically for the baseline, which answers a constant), so that the mix
    of sessions is the same for both apps. A person whose session failed or was cut by the end of a phase is
    retired: the gateway's view of them is no longer known.
    """

    def __init__(self, seed: int, check_flow: bool):
        self.rng = random.Random(seed)
        self.check_flow = check_flow
        self.serial = 0
        self.known: list[Person] = []  # language chosen, not registered, no draft
        self.registered: list[Person] = []
        self.drafts: list[Person] = []
        self.sessions_started = 0
        self.sessions_completed = 0

    def _new_person(self) -> Person:
        self.serial += 1
        prefix = PHONE_PREFIXES[self.serial % len(PHONE_PREFIXES)]
        network = NETWORK_CODES[self.serial % len(NETWORK_CODES)]
        return Person(
            phone=f"{prefix}{self.serial:0{PHONE_SUFFIX_DIGITS}d}", network=network, answers=self._valid_answers()
        )

    def _valid_answers(self) -> list[str]:
        rng = self.rng
        born = rng.randint(1960, 2000)
        national_id = "99" if rng.random() < P_SKIP_ID else f"LS{self.serial:08d}"
        return [
            rng.choice(NAMES),
            str(rng.randint(1, 2)),
            str(born),
            str(rng.randint(1, 10)),
            rng.choice(VILLAGES),
            str(rng.randint(1, 2)),
            str(rng.randint(max(born, 2019), 2021)),
            national_id,
            str(rng.randint(1, 12)),
            str(rng.randint(1, 5)),
        ]

    @staticmethod
    def _take(pool: list[Person], rng: random.Random) -> Person:
        index = rng.randrange(len(pool))
        pool[index], pool[-1] = pool[-1], pool[index]
        return pool.pop()

    def next_session(self) -> Session:
        rng = self.rng
        self.sessions_started += 1
        if self.drafts and rng.random() < P_RESUME:
            return self._resume(self._take(self.drafts, rng))
        returning = len(self.known) + len(self.registered)
        if returning == 0 or rng.random() < P_NEW_PERSON:
            person = self._new_person()
            choice = rng.random()
            if choice < 0.7:
                return self._registration(person, self._dial(person) + [Step("1")])
            return self._covid(person) if choice < 0.9 else self._status(person)
        if rng.randrange(returning) < len(self.registered):
            person = self._take(self.registered, rng)
            choice = rng.random()
            return (
                self._status(person) if choice < 0.5 else self._covid(person) if choice < 0.85 else self._alerts(person)
            )
        person = self._take(self.known, rng)
        if rng.random() < 0.6:
            return self._registration(person, self._dial(person) + [Step("1")])
        return self._covid(person)

    def finish(self, session: Session) -> None:
        """Put the person back where their next session starts from; retire them if the session went wrong."""
        if session.failed or session.index < len(session.steps):
            return
        self.sessions_completed += 1
        person = session.person
        for name, value in session.outcome.items():
            setattr(person, name, value)
        if person.draft:
            self.drafts.append(person)
        elif person.registered:
            self.registered.append(person)
        else:
            self.known.append(person)

    # Scripts. Each returns a session whose last step is END, except a dropped registration.
    def _dial(self, person: Person) -> list[Step]:
        """The dial, and the language on a first dial (the gateway asks before anything else)."""
        if person.language is not None:
            return [Step(None)]
        return [Step(None), Step("2" if self.rng.random() < P_SESOTHO else "1")]

    def _language_outcome(self, person: Person, steps: list[Step]) -> dict:
        if person.language is not None:
            return {}
        return {"language": steps[1].answer}

    def _registration(self, person: Person, steps: list[Step], first: int = 0) -> Session:
        rng = self.rng
        outcome = self._language_outcome(person, steps)
        answers = person.answers
        can_drop = first + 1 < QUESTION_COUNT
        drop_after = rng.randint(first + 1, QUESTION_COUNT - 1) if can_drop and rng.random() < P_DROP else None
        for index in range(first, QUESTION_COUNT):
            if rng.random() < P_INVALID:
                steps.append(Step(INVALID_ANSWERS[index]))
            if index > first and rng.random() < P_BACK:
                steps += [Step("0"), Step(answers[index - 1])]
            steps.append(Step(answers[index]))
            if drop_after == index + 1:
                return Session(person, steps, {**outcome, "draft": index + 1})
        if rng.random() < P_DECLINE:
            steps.append(Step("2", end=True))
            return Session(person, steps, {**outcome, "draft": 0})
        steps.append(Step("1"))  # consent
        if rng.random() < P_CONFIRM_PAGES:
            steps.append(Step("98"))
        steps.append(Step("1", end=True, reference=True))
        return Session(person, steps, {**outcome, "draft": 0, "registered": True})

    def _resume(self, person: Person) -> Session:
        """A dropped registration: the dial offers to continue (1) or start again (2)."""
        if self.rng.random() < 0.8:
            return self._registration(person, [Step(None), Step("1")], first=person.draft)
        return self._registration(person, [Step(None), Step("2")])

    def _contact_end(self) -> list[Step]:
        """From the main menu: contact us, then a call back or a problem report, which ends the session."""
        if self.rng.random() < 0.5:
            return [Step("6"), Step("1"), Step(str(self.rng.randint(1, 3)), end=True)]
        return [Step("6"), Step("2"), Step(self.rng.choice(PROBLEMS), end=True)]

    def _status(self, person: Person) -> Session:
        steps = self._dial(person)
        outcome = self._language_outcome(person, steps)
        if self.rng.random() < P_INVALID:
            steps.append(Step("7"))
        steps += [Step("2"), Step("00"), *self._contact_end()]
        return Session(person, steps, outcome)

    def _covid(self, person: Person) -> Session:
        rng = self.rng
        steps = self._dial(person)
        outcome = self._language_outcome(person, steps)
        steps.append(Step("3"))
        if rng.random() < P_INVALID:
            steps.append(Step("9"))
        steps += [Step(str(rng.randint(1, 5)))] + [Step("98")] * rng.randint(1, 3) + [Step("0")]
        if rng.random() < 0.3:
            steps += [Step("6"), Step("0")]  # tips by SMS, then back to the topics
        steps += [Step(str(rng.randint(1, 5))), Step("98"), Step("00"), *self._contact_end()]
        return Session(person, steps, outcome)

    def _alerts(self, person: Person) -> Session:
        steps = [*self._dial(person), Step("4"), Step("1"), Step("00"), *self._contact_end()]
        return Session(person, steps, {})


# --- A minimal HTTP/1.1 keep-alive client ------------------------------------------------------------------------


class HttpError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1 with a Content-Length."""


class Connection:
    """One keep-alive connection that POSTs forms; reconnects (and re-sends once) if the server closed it.

    Re-sending is safe here: the gateway answers a repeated hop from the session without acting twice.
    """

    def __init__(self, port: int):
        self.port = port
        self.prefix = (
            f"POST {USSD_PATH}?token={WEBHOOK_TOKEN} HTTP/1.1\r\nHost: {common.HOST}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(common.HOST, self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        fresh = self.writer is None
        if fresh:
            await self._open()
        try:
            return await self._exchange(body)
        except (HttpError, ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if fresh:
                raise
            self.reconnects += 1
            await self._open()
            return await self._exchange(body)

    async def _exchange(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(self.prefix + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise HttpError(f"not an HTTP/1.1 answer: {head[:40]!r}")
        status = int(head[9:12])
        length = None
        close = False
        for line in head.lower().split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
            elif line.startswith(b"connection:") and b"close" in line:
                close = True
        if length is None:
            raise HttpError("answer without Content-Length")
        answer = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, answer


# --- Measurements ------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """What one measurement of one app produced."""

    app: str
    mode: str  # "max" or "rate"
    duration: float
    offered_rate: float | None = None
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: Counter = field(default_factory=Counter)
    reconnects: int = 0
    sessions_completed: int = 0
    loadgen_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    redis_cpu_seconds: float | None = None
    other_cpu_seconds: float = 0.0  # used by processes outside the benchmark (a shared machine skews the figures)
    redis: dict | None = None

    @property
    def hops(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.hops / self.duration

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict:
        hops = max(self.hops, 1)
        return {
            "app": self.app,
            "mode": self.mode,
            "duration_s": round(self.duration, 2),
            "offered_hops_per_s": self.offered_rate,
            "hops": self.hops,
            "hops_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile_ms(0.50), 2),
            "p99_ms": round(self.percentile_ms(0.99), 2),
            "max_ms": round(1000 * max(self.latencies, default=float("nan")), 2),
            "mean_ms": round(1000 * statistics.fmean(self.latencies), 2) if self.latencies else None,
            "errors": dict(self.errors),
            "reconnects": self.reconnects,
            "sessions_completed": self.sessions_completed,
            "server_cpu_ms_per_hop": round(1000 * self.server_cpu_seconds / hops, 3),
            "redis_cpu_ms_per_hop": (
                round(1000 * self.redis_cpu_seconds / hops, 3) if self.redis_cpu_seconds is not None else None
            ),
            "loadgen_cpu_share": round(self.loadgen_cpu_seconds / self.duration, 3),
            "other_processes_cpu_share": round(self.other_cpu_seconds / self.duration, 3),
            "redis": self.redis,
        }


async def closed_loop(port: int, population: Population, users: int, duration: float, phase: Phase | None) -> None:
    """`users` virtual users, each on its own connection, each sending its next hop as soon as it has an answer."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + duration

    async def user() -> None:
        connection = Connection(port)
        try:
            while loop.time() < stop_at:
                session = population.next_session()
                while not session.done and loop.time() < stop_at:
                    await _one_hop(connection, session, population, loop.time(), phase)
                population.finish(session)
        finally:
            if phase is not None:
                phase.reconnects += connection.reconnects
            connection.close()

    await asyncio.gather(*(user() for _ in range(users)))


async def open_loop(port: int, population: Population, rate: float, duration: float, phase: Phase) -> None:
    """Poisson arrivals at `rate`; each takes a waiting session (or a new one) and a free connection."""
    loop = asyncio.get_running_loop()
    rng = random.Random(population.rng.random())
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    connections = [Connection(port) for _ in range(OPEN_LOOP_CONNECTIONS)]
    for connection in connections:
        idle.put_nowait(connection)
    waiting: list[Session] = []
    live = 0

    async def arrival(scheduled: float) -> None:
        nonlocal live
        if waiting and (live >= OPEN_LOOP_SESSIONS or rng.random() < len(waiting) / OPEN_LOOP_SESSIONS):
            session = Population._take(waiting, rng)
        else:
            session = population.next_session()
            live += 1
        connection = await idle.get()
        try:
            await _one_hop(connection, session, population, scheduled, phase)
        finally:
            idle.put_nowait(connection)
        if session.done:
            population.finish(session)
            live -= 1
        else:
            waiting.append(session)

    tasks = set()
    start = loop.time()
    scheduled = start
    while True:
        scheduled += rng.expovariate(rate)
        if scheduled >= start + duration:
            break
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(arrival(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            phase.errors["not_answered"] += len(pending)
    phase.reconnects = sum(connection.reconnects for connection in connections)
    for connection in connections:
        connection.close()


async def _one_hop(
    connection: Connection, session: Session, population: Population, started: float, phase: Phase | None
) -> None:
    loop = asyncio.get_running_loop()
    try:
        status, body = await asyncio.wait_for(connection.post(session.body()), REQUEST_TIMEOUT_SECONDS)
    except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError) as exc:
        connection.close()
        session.failed = True
        if phase is not None:
            phase.errors[type(exc).__name__] += 1
        return
    error = session.check(status, body, population.check_flow)
    if phase is None:
        return
    if error:
        phase.errors[error] += 1
    else:
        phase.latencies.append(loop.time() - started)


# --- Servers -----------------------------------------------------------------------------------------------------


class Server:
    """One gunicorn, started with the settings every app of the run shares; stopped with its whole group."""

    def __init__(
        self, name: str, module: str, directory: Path, env: dict[str, str], args: argparse.Namespace, log_path: Path
    ):
        self.name = name
        self.port = common.free_port()
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{common.HOST}:{self.port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            WORKER_CLASS,
            "--threads",
            str(args.threads),
            "--keep-alive",
            str(KEEP_ALIVE_SECONDS),
            "--chdir",
            str(directory),
            # Two masters in one run would fight over the default control socket in the home directory.
            "--no-control-socket",
            module,
        ]
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self) -> None:
        """Until the server answers HTTP (any status): gunicorn binds before its workers have imported the app."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((common.HOST, self.port), timeout=1) as probe:
                    probe.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    if probe.recv(16).startswith(b"HTTP/1."):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {SERVER_START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers so far (psutil is a gunicorn-free dependency of the dev tools)."""
        import psutil

        try:
            master = psutil.Process(self.process.pid)
            processes = [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        common.stop_process_group(self.process)
        self.log.close()


def gunicorn_settings(args: argparse.Namespace) -> dict:
    """The server's settings as the results file records them, so that runs are compared only under the same ones."""
    return {
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": WORKER_CLASS,
        "keep_alive_s": KEEP_ALIVE_SECONDS,
    }


def describe_gunicorn(args: argparse.Namespace) -> str:
    """The server's settings as the run prints them first, so that a pasted report says what it measured."""
    threads = f"{args.workers} workers x {args.threads} threads"
    return f"gunicorn {WORKER_CLASS}, {threads}, keep-alive {KEEP_ALIVE_SECONDS} s"


class RedisProbe:
    """Counts what the gateway asks of Redis during a phase, and the embedded server's CPU time."""

    def __init__(self, url: str, embedded: bool):
        from config.redis import connect

        self.client = connect(url, socket_timeout=5)
        self.embedded = embedded
        self.process = self._find_embedded_process(url) if embedded else None

    @staticmethod
    def _find_embedded_process(url: str):
        import psutil

        socket_path = url.removeprefix("unix://")
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if socket_path in " ".join(child.cmdline()):
                    return child
        return None

    def snapshot(self) -> dict:
        commands = {
            name.removeprefix("cmdstat_"): stats["calls"] for name, stats in self.client.info("commandstats").items()
        }
        stats = self.client.info("stats")
        cpu = None
        if self.process is not None:
            times = self.process.cpu_times()
            cpu = times.user + times.system
        return {
            "commands": commands,
            "reads": stats.get("total_reads_processed", 0),
            "connections": stats.get("total_connections_received", 0),
            "cpu": cpu,
        }

    # Our own INFO commands between two snapshots: commandstats and stats of the second one.
    OWN_READS = 2

    def delta(self, before: dict, after: dict, hops: int) -> dict:
        per_command = {
            name: after["commands"][name] - before["commands"].get(name, 0)
            for name in after["commands"]
            if name != "info" and after["commands"][name] != before["commands"].get(name, 0)
        }
        hops = max(hops, 1)
        total = sum(per_command.values())
        return {
            "scope": "embedded (gateway only)" if self.embedded else "shared server (all clients)",
            "commands_per_hop": round(total / hops, 3),
            "by_command_per_hop": {name: round(calls / hops, 3) for name, calls in sorted(per_command.items())},
            "reads_per_hop": round((after["reads"] - before["reads"] - self.OWN_READS) / hops, 3),
            "new_connections": after["connections"] - before["connections"],
        }


# --- The run -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help=f"seconds per phase (default {DEFAULT_DURATION_SECONDS:g})")
    parser.add_argument(
        "--warmup", type=float, help=f"seconds of unmeasured load first (default {DEFAULT_WARMUP_SECONDS:g})"
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="closed-loop virtual users")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="hops/s of the fixed-rate phase")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="gunicorn gthread threads per worker")
    parser.add_argument(
        "--database-url",
        default="",
        help="default: a fresh SQLite file in a temp dir; a "
        "PostgreSQL URL gets a scratch database on that server, dropped at the end",
    )
    parser.add_argument("--redis-url", default="", help="default: an embedded Redis in a temp dir (exact counts)")
    parser.add_argument("--log-level", default="INFO", help="the gateway's LOG_LEVEL (INFO, as in production)")
    parser.add_argument("--apps", choices=("both", "baseline", "gateway"), default="both")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a minimal Flask app making the contract's two Redis round trips per hop (information)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated callers")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (server logs, SQLite file)")
    args = parser.parse_args(argv)
    args.duration = args.duration or (QUICK_DURATION_SECONDS if args.quick else DEFAULT_DURATION_SECONDS)
    args.warmup = (
        args.warmup if args.warmup is not None else (QUICK_WARMUP_SECONDS if args.quick else DEFAULT_WARMUP_SECONDS)
    )
    return args


def measure(
    name: str,
    server: Server,
    population: Population,
    mode: str,
    args: argparse.Namespace,
    redis_probe: RedisProbe | None,
) -> Phase:
    """One phase against one server, with CPU and (for the gateway) Redis accounting around it."""
    phase = Phase(app=name, mode=mode, duration=args.duration, offered_rate=args.rate if mode == "rate" else None)
    population.sessions_completed = 0
    redis_before = redis_probe.snapshot() if redis_probe else None
    cpu_before, loadgen_before, machine_before = server.cpu_seconds(), time.process_time(), common.busy_cpu_seconds()
    if mode == "max":
        asyncio.run(closed_loop(server.port, population, args.concurrency, args.duration, phase))
    else:
        asyncio.run(open_loop(server.port, population, args.rate, args.duration, phase))
    phase.loadgen_cpu_seconds = time.process_time() - loadgen_before
    phase.server_cpu_seconds = server.cpu_seconds() - cpu_before
    machine_busy = common.busy_cpu_seconds() - machine_before
    phase.sessions_completed = population.sessions_completed
    if redis_probe:
        redis_after = redis_probe.snapshot()
        phase.redis = redis_probe.delta(redis_before, redis_after, phase.hops)
        if redis_after["cpu"] is not None:
            phase.redis_cpu_seconds = redis_after["cpu"] - redis_before["cpu"]
    ours = phase.server_cpu_seconds + phase.loadgen_cpu_seconds + (phase.redis_cpu_seconds or 0.0)
    phase.other_cpu_seconds = max(0.0, machine_busy - ours)
    return phase


def run(args: argparse.Namespace, workdir: Path) -> dict:
    sys.path.insert(0, str(common.PROJECT_ROOT))
    from config.redis import ensure_embedded_redis
    from models.migrate import upgrade

    scratch = None
    servers: list[Server] = []
    try:
        if args.database_url.startswith("postgresql"):
            scratch = common.ScratchPostgres(args.database_url, "ussd").create()
            database_url = scratch.url
        else:
            database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        upgrade(database_url)
        redis_url = args.redis_url or ensure_embedded_redis(workdir / "redis")
        (workdir / "baseline_app.py").write_text(BASELINE_MODULE)
        (workdir / "floor_app.py").write_text(FLOOR_MODULE)

        env = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench-only-secret",
            "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "USSD_SERVICE_CODE": SERVICE_CODE,
            "LOG_LEVEL": args.log_level,
            "PYTHONPATH": str(common.PROJECT_ROOT),
        }
        apps = {"baseline": ("baseline_app:app", workdir), "gateway": ("wsgi:app", common.PROJECT_ROOT)}
        if args.apps != "both":
            apps = {args.apps: apps[args.apps]}
        if args.floor:
            apps["floor"] = ("floor_app:app", workdir)
        started = {}
        for name, (module, directory) in apps.items():
            server = Server(name, module, directory, env, args, workdir / f"{name}.log")
            servers.append(server)
            started[name] = server
        for server in servers:
            server.wait_ready()
        populations = {name: Population(args.seed, check_flow=name == "gateway") for name in started}
        redis_probe = RedisProbe(redis_url, embedded=not args.redis_url) if "gateway" in started else None

        print(
            f"{describe_gunicorn(args)}; {args.duration:g} s per phase; database {_describe_db(database_url)}; "
            f"redis {'embedded' if not args.redis_url else args.redis_url}",
            flush=True,
        )
        for name, server in started.items():
            if args.warmup:
                asyncio.run(closed_loop(server.port, populations[name], args.concurrency, args.warmup, None))
        phases: list[Phase] = []
        # Alternate the apps within each mode, so a drift of the machine hits both alike.
        for mode in ("max", "rate"):
            for name, server in started.items():
                probe = redis_probe if name == "gateway" else None
                phase = measure(name, server, populations[name], mode, args, probe)
                phases.append(phase)
                print(
                    f"  {name:8} {mode:4}: {phase.rate:7.1f} hops/s  p50 {phase.percentile_ms(0.5):6.2f} ms  "
                    f"p99 {phase.percentile_ms(0.99):6.2f} ms  errors {sum(phase.errors.values())}",
                    flush=True,
                )
        for server in servers:
            if server.process.poll() is not None:
                print(f"{server.name} died during the run:\n{server.log_tail()}", file=sys.stderr)
        return {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": common.machine_description(),
            "settings": {
                **gunicorn_settings(args),
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "concurrency": args.concurrency,
                "rate": args.rate,
                "log_level": args.log_level,
                "database": _describe_db(database_url),
                "redis": "embedded" if not args.redis_url else "external",
            },
            "phases": [phase.summary() for phase in phases],
        }
    finally:
        for server in servers:
            server.stop()
        if scratch is not None:
            scratch.drop()


def _describe_db(url: str) -> str:
    return "sqlite (temp file)" if url.startswith("sqlite") else url.split("://", 1)[0]


def judge(results: dict) -> dict:
    """The two goals of the issue, from phases measured in the same run."""
    by = {(phase["app"], phase["mode"]): phase for phase in results["phases"]}
    verdict = {}
    gateway_max, baseline_max = by.get(("gateway", "max")), by.get(("baseline", "max"))
    if gateway_max and baseline_max and baseline_max["hops_per_s"]:
        ratio = gateway_max["hops_per_s"] / baseline_max["hops_per_s"]
        verdict["throughput_ratio"] = {
            "value": round(ratio, 3),
            "goal": f">= {GOAL_THROUGHPUT_RATIO}",
            "pass": ratio >= GOAL_THROUGHPUT_RATIO,
        }
        # Not a goal, but steadier than hops/s on a shared machine: what one hop costs the server, baseline / gateway.
        cpu = gateway_max["server_cpu_ms_per_hop"]
        if cpu:
            verdict["server_cpu_per_hop_ratio"] = {
                "value": round(baseline_max["server_cpu_ms_per_hop"] / cpu, 3),
                "goal": "information only",
                "pass": None,
            }
    floor_max = by.get(("floor", "max"))
    if gateway_max and floor_max and floor_max["hops_per_s"]:
        verdict["throughput_ratio_to_redis_floor"] = {
            "value": round(gateway_max["hops_per_s"] / floor_max["hops_per_s"], 3),
            "goal": "information only",
            "pass": None,
        }
    gateway_rate = by.get(("gateway", "rate"))
    if gateway_rate:
        p99 = gateway_rate["p99_ms"]
        clean = not gateway_rate["errors"]
        verdict["p99_at_rate_ms"] = {
            "value": p99,
            "goal": f"< {GOAL_P99_MS:g} ms at {results['settings']['rate']:g} hops/s, no errors",
            "pass": p99 < GOAL_P99_MS and clean,
        }
    return verdict


def print_report(results: dict) -> None:
    header = (
        f"{'app':9}{'phase':12}{'hops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
        f"{'srv CPU ms/hop':>16}{'loadgen CPU':>13}{'other CPU':>11}"
    )
    print()
    print(header)
    print("-" * len(header))
    for phase in results["phases"]:
        label = "max" if phase["mode"] == "max" else f"{phase['offered_hops_per_s']:g}/s"
        errors = sum(phase["errors"].values())
        print(
            f"{phase['app']:9}{label:12}{phase['hops_per_s']:9.1f}{phase['p50_ms']:9.2f}{phase['p99_ms']:9.2f}"
            f"{phase['max_ms']:9.2f}{errors:8d}{phase['server_cpu_ms_per_hop']:16.3f}"
            f"{phase['loadgen_cpu_share']:13.0%}{phase['other_processes_cpu_share']:11.0%}"
        )
    for phase in results["phases"]:
        if phase["errors"]:
            print(f"errors {phase['app']} {phase['mode']}: {phase['errors']}")
        if phase["redis"]:
            redis = phase["redis"]
            print(
                f"redis {phase['mode']:4} ({redis['scope']}): {redis['commands_per_hop']} commands/hop "
                f"{redis['by_command_per_hop']}, ~{redis['reads_per_hop']} round trips/hop"
                + (f", redis CPU {phase['redis_cpu_ms_per_hop']} ms/hop" if phase["redis_cpu_ms_per_hop"] else "")
            )
    print()
    for name, goal in results["goals"].items():
        mark = "" if goal["pass"] is None else " PASS" if goal["pass"] else " MISS"
        print(f"{name}: {goal['value']} ({goal['goal']}){mark}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with common.temp_dir("ussd", keep=args.keep_temp) as workdir, common.ending_cleanly("interrupted; servers stopped"):
        results = run(args, workdir)
    results["goals"] = judge(results)
    print_report(results)
    print(f"\nresults: {common.write_results('ussd', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
