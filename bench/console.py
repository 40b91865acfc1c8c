"""Staff console benchmark: beneficiary search, list and dashboard over HTTP, 100,000 to 1,000,000 beneficiaries.

The issue's goals: beneficiary search and list under 150 ms at the 95th percentile, the dashboard under 300 ms (p95
too), with 100,000 and then 1,000,000 beneficiaries on PostgreSQL; the beneficiaries page (first page, 50 rows)
weighs under 200 KB.

    .venv/bin/python bench/console.py                      # ~3-5 min: 100,000 beneficiaries, 3 clients
    .venv/bin/python bench/console.py --quick              # a smoke run: 5,000 beneficiaries, few requests
    .venv/bin/python bench/console.py --without-trigram    # the same without the name index (before/after)
    .venv/bin/python bench/console.py --beneficiaries 1000000 --database-url postgresql+psycopg://…/bench_seed
                                                           # on a database seeded beforehand (kept)

What it does: creates a scratch database `bench_console_<random>` on `--postgres-url` (trust auth), or takes
`--database-url`, migrates it, seeds synthetic people with `devtools.demo.seed_demo` up to `--beneficiaries` (with
the SMS a real programme would have sent them: a registration confirmation each, a grant notice for every grant past
review, in realistic delivery statuses), runs `VACUUM ANALYZE` (what autovacuum does on a live database), creates an
admin and an officer limited to two districts, counts the dashboard's figures once, and starts the gateway under
gunicorn with the flags of `bench/ussd.py`. While the clients run, a thread recounts the dashboard's figures at once
and then every minute, as the worker's sweep does in production. Each client logs in over
HTTP like a browser (GET /login, the form's csrf_token, POST, the session cookie) and the clients then fetch a
shuffled mix of console URLs in a closed loop, each on its own keep-alive connection: the list (first page, a deep
page by cursor), searches (reference, phone, national ID, a common surname, a name that matches nobody), filters
(district, grant status, a registration date range) and the dashboard (month and week), as the admin and as the
officer. Every answer is checked (status 200, the rows it must hold). Latency is from the request to the last byte.

Results go to stdout and to `bench/results/console-<time>.json` (git-ignored); a scratch database is dropped.
The exit status is 0 whenever the benchmark ran, goals met or not: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import gzip
import html
import http.client
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import common

# Run as a script, Python puts bench/ on the path (for `common`, and `ussd`: the gunicorn helper).
sys.path.insert(0, str(common.PROJECT_ROOT))

import sqlalchemy as sa  # noqa: E402
from ussd import (  # noqa: E402
    DEFAULT_THREADS,
    DEFAULT_WORKERS,
    Server,
    describe_gunicorn,
    gunicorn_settings,
)

from config.redis import ensure_embedded_redis  # noqa: E402
from config.settings import Settings  # noqa: E402
from devtools.demo import seed_demo  # noqa: E402
from models.db import Database  # noqa: E402
from models.grants import Grant, GrantStatus  # noqa: E402
from models.messages import OutboundMessage  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.people import Beneficiary, Contact  # noqa: E402
from models.reports import refresh_dashboard_counts  # noqa: E402
from models.search import PAGE_SIZE  # noqa: E402
from models.staff import Role, StaffUser, create_staff  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/postgres"

# The goals of the issue.
GOAL_SEARCH_P95_MS = 150.0  # beneficiary search and list
GOAL_DASHBOARD_P95_MS = 300.0
GOAL_PAGE_BYTES = 200 * 1024  # the beneficiaries page, first page of PAGE_SIZE rows

DEFAULT_BENEFICIARIES = 100_000
# The worker's default DASHBOARD_REFRESH_SECONDS: the run recounts the dashboard's figures this often, as it would.
DASHBOARD_REFRESH_SECONDS = Settings.dashboard_refresh_seconds
QUICK_BENEFICIARIES = 5_000
# Measured requests per URL kind and role: enough for a p95 that moves by a few ms between runs, not by tens.
DEFAULT_SAMPLES = 120
QUICK_SAMPLES = 10
# Unmeasured rounds of every URL first (imports, connection pools, PostgreSQL's caches).
WARMUP_ROUNDS = 3
# Concurrent clients: a few staff members at once; more would only measure a 2-core machine's queue.
DEFAULT_CLIENTS = 3
REQUEST_TIMEOUT_SECONDS = 30.0

# Who measures. The officer sees two of the smallest districts (8 % of people), the hardest case for a page cut by
# keyset on the id: about 600 rows are walked to fill a page of 50.
PASSWORD = "bench-console-password"
ADMIN_EMAIL = "admin@bench.example"
OFFICER_EMAIL = "officer@bench.example"
OFFICER_DISTRICTS = ("Mokhotlong", "Qacha's Nek")
ROLES = ("admin", "officer")

# Search texts: one of seed_demo's surnames (1 person in 20) and a name nobody has (every name is read).
COMMON_SURNAME = "Mokoena"
UNKNOWN_NAME = "Ntlhabeleng"
# Sampled people per role for the reference, phone and national-ID searches and the deep-page cursors.
SAMPLE_PEOPLE = 200
# Deep pages start between these shares of the visible list (page 1,000 of 2,000 for the admin).
DEEP_PAGE_SHARES = (0.4, 0.9)
# The date-range filter: registrations between these many days ago (a month, somewhere in the seeded year).
DATE_RANGE_DAYS_AGO = (120, 90)

SEARCH_KINDS = (
    "list_first",
    "list_deep",
    "search_reference",
    "search_phone",
    "search_national_id",
    "search_surname",
    "search_no_match",
    "filter_district",
    "filter_status",
    "filter_dates",
)
DASHBOARD_KINDS = ("dashboard_month", "dashboard_week")
ROW_MARKER = '<tr><td><a href="/beneficiaries/'
CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- the database ----------------------------------------------------------------------------------------------------


@dataclass
class Person:
    reference: str
    phone: str
    national_id: str | None


@dataclass
class Samples:
    """What one role's URLs are made of: people it may see, and cursors deep in its list."""

    people: list[Person]
    deep_cursors: list[int]


def samples_for(db: Database, districts: tuple[str, ...] | None, rng: random.Random) -> Samples:
    """People and deep cursors drawn from what `districts` (None: all) may see."""
    where = [Beneficiary.district.in_(districts)] if districts else []
    with db.session() as session:
        ids = list(session.execute(sa.select(Beneficiary.id).where(*where).order_by(Beneficiary.id.desc())).scalars())
        chosen = rng.sample(ids, min(SAMPLE_PEOPLE, len(ids)))
        rows = session.execute(
            sa.select(Beneficiary.reference, Contact.phone, Beneficiary.national_id)
            .join(Contact, Contact.id == Beneficiary.contact_id)
            .where(Beneficiary.id.in_(chosen))
        ).all()
    low, high = (int(share * len(ids)) for share in DEEP_PAGE_SHARES)
    cursors = [ids[rng.randrange(low, max(high, low + 1))] for _ in range(SAMPLE_PEOPLE)]
    return Samples(people=[Person(*row) for row in rows], deep_cursors=cursors)


def grant_status_counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        return dict(session.execute(sa.select(Grant.status, sa.func.count()).group_by(Grant.status)).all())


# --- the URLs --------------------------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One request to make, and what its answer must hold."""

    role: str
    kind: str
    path: str
    rows: int | None = None  # exact number of beneficiary rows the page must show (None: not checked)
    min_rows: int = 0
    contains: str | None = None


def _list(params: dict) -> str:
    return "/beneficiaries" + ("?" + urlencode(params, quote_via=quote) if params else "")


def probe_for(kind: str, role: str, samples: Samples, rng: random.Random, today: date) -> Probe:
    """A request of `kind` as `role`, with a fresh sample where the kind has one."""
    person = rng.choice(samples.people)
    district = OFFICER_DISTRICTS[0] if role == "officer" else "Leribe"
    match kind:
        case "list_first":
            return Probe(role, kind, _list({}), rows=PAGE_SIZE)
        case "list_deep":
            return Probe(role, kind, _list({"after": rng.choice(samples.deep_cursors)}), rows=PAGE_SIZE)
        case "search_reference":
            # At least one row: a reference is eight digits and may also be someone's number (+266 and the same
            # eight digits), which an officer's search matches too (models/search.py).
            return Probe(role, kind, _list({"q": person.reference}), min_rows=1, contains=person.reference)
        case "search_phone":
            local = person.phone.removeprefix("+266")
            typed = person.phone if rng.random() < 0.5 else f"{local[:4]} {local[4:]}"
            return Probe(role, kind, _list({"q": typed}), rows=1, contains=person.reference)
        case "search_national_id":
            with_id = [p for p in samples.people if p.national_id]
            person = rng.choice(with_id)
            return Probe(role, kind, _list({"q": person.national_id}), rows=1, contains=person.reference)
        case "search_surname":
            return Probe(role, kind, _list({"q": COMMON_SURNAME}), min_rows=1, contains=COMMON_SURNAME)
        case "search_no_match":
            return Probe(role, kind, _list({"q": UNKNOWN_NAME}), rows=0, contains="No beneficiaries match.")
        case "filter_district":
            return Probe(role, kind, _list({"district": district}), rows=PAGE_SIZE)
        case "filter_status":
            return Probe(role, kind, _list({"status": GrantStatus.PAID}), rows=PAGE_SIZE)
        case "filter_dates":
            start, end = (today - timedelta(days=days) for days in DATE_RANGE_DAYS_AGO)
            params = {"registered_from": start.isoformat(), "registered_to": end.isoformat()}
            return Probe(role, kind, _list(params), min_rows=1)
        case "dashboard_month":
            return Probe(role, kind, "/?period=month", contains="Registrations")
        case "dashboard_week":
            return Probe(role, kind, "/?period=week", contains="Registrations")
    raise ValueError(f"unknown kind {kind}")


# --- the HTTP client -------------------------------------------------------------------------------------------------


class LoginFailed(RuntimeError):
    """The console did not let the benchmark's staff account in."""


class Browser:
    """One staff member's keep-alive connection with their session cookie, as a browser would hold it."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection(common.HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Host": f"{common.HOST}:{self.port}", "Accept-Encoding": "identity"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closed an idle keep-alive connection: open a new one and send again (GETs, and the login).
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        content = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, content, dict(response.getheaders())

    def log_in(self, email: str, password: str) -> None:
        """GET the form, take its CSRF token, POST it; a 302 to the start page means we are in."""
        status, body, _ = self.request("GET", "/login")
        found = CSRF_PATTERN.search(body.decode())
        if status != 200 or not found:
            raise LoginFailed(f"GET /login answered {status} without a csrf_token")
        form = urlencode({"csrf_token": found.group(1), "email": email, "password": password}).encode()
        status, body, headers = self.request("POST", "/login", form)
        if status != 302 or headers.get("Location", "").rstrip("/").endswith("/login"):
            raise LoginFailed(f"POST /login answered {status}: {body[:200]!r}")

    def close(self) -> None:
        self.connection.close()


@dataclass
class Measurements:
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    sizes: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)


def check(probe: Probe, status: int, body: bytes) -> str | None:
    """Why the answer is wrong, or None."""
    if status != 200:
        return f"HTTP {status}"
    text = body.decode(errors="replace")
    rows = text.count(ROW_MARKER)
    if probe.rows is not None and rows != probe.rows:
        return f"{rows} rows, expected {probe.rows}"
    if rows < probe.min_rows:
        return f"{rows} rows, expected at least {probe.min_rows}"
    if probe.contains and probe.contains not in text:
        return f"{probe.contains!r} missing"
    if probe.role == "officer" and rows:
        seen = set(re.findall(r"</td><td>(\d{4})</td><td>([^<]+)</td>", text))
        outside = {html.unescape(district) for _, district in seen} - set(OFFICER_DISTRICTS)
        if outside:
            return f"officer saw rows of {sorted(outside)}"
    return None


def run_clients(port: int, probes: list[Probe], clients: int, measurements: Measurements | None) -> None:
    """`clients` threads, each logged in as both roles on its own connections, taking probes off one shared list."""
    queue = list(reversed(probes))
    queue_lock = threading.Lock()
    failures: list[BaseException] = []

    def client() -> None:
        browsers = {}
        try:
            for role, email in (("admin", ADMIN_EMAIL), ("officer", OFFICER_EMAIL)):
                browsers[role] = Browser(port)
                browsers[role].log_in(email, PASSWORD)
            while True:
                with queue_lock:
                    if not queue:
                        return
                    probe = queue.pop()
                started = time.perf_counter()
                try:
                    status, body, _ = browsers[probe.role].request("GET", probe.path)
                except (OSError, http.client.HTTPException) as exc:
                    status, body = 0, repr(exc).encode()
                    browsers[probe.role].connection.close()
                elapsed = time.perf_counter() - started
                if measurements is None:
                    continue
                error = check(probe, status, body)
                key = (probe.role, probe.kind)
                with measurements.lock:
                    if error:
                        measurements.errors[key].append(f"{probe.path}: {error}")
                    else:
                        measurements.latencies[key].append(elapsed)
                        measurements.sizes[key].append(len(body))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            for browser in browsers.values():
                browser.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a client failed: {failures[0]!r}") from failures[0]


# --- figures ---------------------------------------------------------------------------------------------------------


def percentile_ms(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def summarise(latencies: list[float], sizes: list[int], errors: list[str], goal_ms: float) -> dict:
    p95 = percentile_ms(latencies, 0.95)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": percentile_ms(latencies, 0.50),
        "p95_ms": p95,
        "max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "bytes_median": int(statistics.median(sizes)) if sizes else None,
        "goal_p95_ms": goal_ms,
        "verdict": "PASS" if p95 is not None and p95 < goal_ms and not errors else "MISS",
        "error_samples": errors[:3],
    }


def goal_for(kind: str) -> float:
    return GOAL_DASHBOARD_P95_MS if kind.startswith("dashboard") else GOAL_SEARCH_P95_MS


def page_weight(port: int) -> dict:
    """The first page of the list as the admin sees it (50 rows, all filters empty): raw and gzip bytes."""
    browser = Browser(port)
    try:
        browser.log_in(ADMIN_EMAIL, PASSWORD)
        status, body, headers = browser.request("GET", "/beneficiaries")
    finally:
        browser.close()
    rows = body.decode(errors="replace").count(ROW_MARKER)
    return {
        "status": status,
        "rows": rows,
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body)),
        "content_encoding": headers.get("Content-Encoding", "identity"),
        "goal_bytes": GOAL_PAGE_BYTES,
        "verdict": "PASS" if status == 200 and rows == PAGE_SIZE and len(body) < GOAL_PAGE_BYTES else "MISS",
    }


# --- the run ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/console.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the scratch database")
    parser.add_argument("--beneficiaries", type=int, help=f"people to seed (default {DEFAULT_BENEFICIARIES:,})")
    parser.add_argument("--samples", type=int, help=f"measured requests per URL kind and role ({DEFAULT_SAMPLES})")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent clients (%(default)s)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers (%(default)s)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="gthread threads per worker")
    parser.add_argument("--log-level", default="INFO", help="the gateway's LOG_LEVEL (INFO, as in production)")
    parser.add_argument(
        "--without-trigram",
        action="store_true",
        help="drop the pg_trgm name index after migrating (to measure the name search without it)",
    )
    parser.add_argument(
        "--database-url",
        help="measure on this database instead of a scratch one: seeded only up to --beneficiaries, never dropped",
    )
    parser.add_argument(
        "--dashboard-refresh-seconds",
        type=float,
        default=DASHBOARD_REFRESH_SECONDS,
        help="the worker's recount of the dashboard, made this often during the run (%(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with few people and requests")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sampled people and the request order")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (gunicorn log)")
    args = parser.parse_args(argv)
    args.beneficiaries = args.beneficiaries or (QUICK_BENEFICIARIES if args.quick else DEFAULT_BENEFICIARIES)
    args.samples = args.samples or (QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES)
    if args.clients < 1 or args.samples < 1 or args.beneficiaries < SAMPLE_PEOPLE:
        parser.error(f"--clients and --samples must be positive, --beneficiaries at least {SAMPLE_PEOPLE}")
    return args


TRIGRAM_INDEX = "ix_beneficiaries_full_name_trgm"


def prepare(args: argparse.Namespace, url: str) -> dict:
    """Migrate, seed (unless `--database-url` already holds the people), analyse, add the staff, count the
    dashboard's figures once (as the worker would have); returns what was written."""
    upgrade(url)
    db = Database(url)
    try:
        with db.session() as session:
            present = session.execute(sa.select(sa.func.count()).select_from(Beneficiary)).scalar_one()
        started = time.perf_counter()
        if present < args.beneficiaries:
            with db.session() as session:
                seed_demo(session, args.beneficiaries - present, today=date.today())
        seeded = time.perf_counter() - started
        with db.session() as session:
            for email, role, districts in (
                (ADMIN_EMAIL, Role.ADMIN, None),
                (OFFICER_EMAIL, Role.OFFICER, OFFICER_DISTRICTS),
            ):
                if session.execute(sa.select(StaffUser.id).where(StaffUser.email == email)).first() is None:
                    create_staff(session, email, role, PASSWORD, districts=districts)
            if args.without_trigram:
                session.execute(sa.text(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}"))
            trigram = session.execute(sa.text("SELECT to_regclass(:name)"), {"name": TRIGRAM_INDEX}).scalar()
        common.admin_execute(url, "VACUUM ANALYZE")  # what autovacuum does on a live database
        with db.session() as session:
            people = session.execute(sa.select(sa.func.count()).select_from(Beneficiary)).scalar_one()
            messages = session.execute(sa.select(sa.func.count()).select_from(OutboundMessage)).scalar_one()
        recount = recount_dashboard(db)
        rng = random.Random(args.seed)
        samples = {"admin": samples_for(db, None, rng), "officer": samples_for(db, OFFICER_DISTRICTS, rng)}
        grants = grant_status_counts(db)
    finally:
        db.dispose()
    print(
        f"{people:,} beneficiaries ({people - present:,} seeded in {seeded:.1f} s), {messages:,} SMS; "
        f"trigram name index: {'yes' if trigram else 'no'}; dashboard recount {recount:.2f} s",
        flush=True,
    )
    return {
        "beneficiaries": people,
        "seeded": people - present,
        "messages": messages,
        "seed_seconds": round(seeded, 1),
        "dashboard_recount_seconds": round(recount, 2),
        "grants": grants,
        "trigram_index": bool(trigram),
        "samples": samples,
    }


def recount_dashboard(db: Database) -> float:
    """One recount of the dashboard's figures, as the worker's sweep makes each minute; returns its seconds."""
    started = time.perf_counter()
    with db.session() as session:
        refresh_dashboard_counts(session)
    return time.perf_counter() - started


class Recounter(threading.Thread):
    """The worker's part during the run: the dashboard's figures recounted every DASHBOARD_REFRESH_SECONDS, so
    that their cost weighs on the measured requests as it would in production."""

    def __init__(self, url: str, interval: float):
        super().__init__(name="dashboard-recounter", daemon=True)
        self.db = Database(url)
        self.interval = interval
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        """The first recount at once, so that even a run shorter than the interval measures requests beside one."""
        try:
            while True:
                self.seconds.append(recount_dashboard(self.db))
                if self.stop.wait(self.interval):
                    return
        finally:
            self.db.dispose()


def run(args: argparse.Namespace, workdir: Path) -> dict:
    scratch = None if args.database_url else common.ScratchPostgres(args.postgres_url, "console").create()
    url = args.database_url or scratch.url
    server = recounter = None
    try:
        data = prepare(args, url)
        samples = data.pop("samples")
        env = {
            **os.environ,
            # test: the session cookie is not Secure, so it travels over the benchmark's plain http.
            "APP_ENV": "test",
            "DATABASE_URL": url,
            "REDIS_URL": ensure_embedded_redis(workdir / "redis"),
            "SECRET_KEY": "bench-only-secret",
            "LOG_LEVEL": args.log_level,
            "PYTHONPATH": str(common.PROJECT_ROOT),
        }
        server = Server("gateway", "wsgi:app", common.PROJECT_ROOT, env, args, workdir / "gateway.log")
        server.wait_ready()
        print(
            f"{describe_gunicorn(args)}; {args.clients} clients; {args.samples} requests per URL kind and role",
            flush=True,
        )
        rng = random.Random(args.seed)
        today = date.today()
        kinds = SEARCH_KINDS + DASHBOARD_KINDS
        warmup = [probe_for(k, r, samples[r], rng, today) for _ in range(WARMUP_ROUNDS) for r in ROLES for k in kinds]
        run_clients(server.port, warmup, args.clients, None)
        recounter = Recounter(url, args.dashboard_refresh_seconds)
        recounter.start()
        probes = [probe_for(k, r, samples[r], rng, today) for _ in range(args.samples) for r in ROLES for k in kinds]
        rng.shuffle(probes)
        measurements = Measurements()
        cpu_before, machine_before, started = server.cpu_seconds(), common.busy_cpu_seconds(), time.perf_counter()
        run_clients(server.port, probes, args.clients, measurements)
        elapsed = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before
        machine_busy = common.busy_cpu_seconds() - machine_before
        weight = page_weight(server.port)
        if server.process.poll() is not None:
            print(f"the gateway died during the run:\n{server.log_tail()}", file=sys.stderr)
    finally:
        if recounter is not None:
            recounter.stop.set()
            recounter.join()
            data["dashboard_recounts_during_run_seconds"] = [round(value, 2) for value in recounter.seconds]
        if server is not None:
            server.stop()
        if scratch is not None:
            scratch.drop()

    by_url = {}
    for role in ROLES:
        for kind in kinds:
            key = (role, kind)
            by_url[f"{role} {kind}"] = summarise(
                measurements.latencies[key], measurements.sizes[key], measurements.errors[key], goal_for(kind)
            )
    by_kind = {}
    for kind in kinds:
        latencies = [value for role in ROLES for value in measurements.latencies[(role, kind)]]
        sizes = [value for role in ROLES for value in measurements.sizes[(role, kind)]]
        errors = [value for role in ROLES for value in measurements.errors[(role, kind)]]
        by_kind[kind] = summarise(latencies, sizes, errors, goal_for(kind))
    requests = sum(len(values) for values in measurements.latencies.values())
    return {
        "benchmark": "console",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_description(),
        "settings": {
            **gunicorn_settings(args),
            "clients": args.clients,
            "samples_per_url_kind_and_role": args.samples,
            "log_level": args.log_level,
            "officer_districts": list(OFFICER_DISTRICTS),
            "database": "postgresql (scratch)",
        },
        "data": data,
        "load": {
            "seconds": round(elapsed, 1),
            "requests": requests,
            "requests_per_s": round(requests / elapsed, 1),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(requests, 1), 2),
            # Everything busy machine-wide, in cores: the gateway, PostgreSQL, this client, and any neighbour.
            "machine_busy_cores": round(machine_busy / elapsed, 2),
            "gateway_busy_cores": round(server_cpu / elapsed, 2),
        },
        "by_url": by_url,
        "by_kind": by_kind,
        "page_weight": weight,
    }


def print_report(results: dict) -> None:
    header = f"{'url kind':34}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'bytes':>9}{'goal':>8}  verdict"
    print()
    print(header)
    print("-" * len(header))
    for name, row in [*results["by_url"].items(), *(("all " + k, v) for k, v in results["by_kind"].items())]:
        if name == "all " + SEARCH_KINDS[0]:
            print("-" * len(header))

        def cell(value):
            return f"{value:9.1f}" if value is not None else f"{'-':>9}"

        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        print(
            f"{name:34}{row['requests']:9d}{cell(row['p50_ms'])}{cell(row['p95_ms'])}{cell(row['max_ms'])}"
            f"{row['bytes_median'] or 0:9d}{'<' + format(row['goal_p95_ms'], 'g'):>8}  {row['verdict']}{errors}"
        )
    for name, row in results["by_url"].items():
        for sample in row["error_samples"]:
            print(f"! {name}: {sample}")
    load = results["load"]
    weight = results["page_weight"]
    print()
    print(
        f"{load['requests']} requests in {load['seconds']} s ({load['requests_per_s']}/s); gateway CPU "
        f"{load['server_cpu_ms_per_request']} ms/request; cores busy machine-wide {load['machine_busy_cores']} of "
        f"{os.cpu_count()} (gateway {load['gateway_busy_cores']}, the rest PostgreSQL, the clients and neighbours)"
    )
    print(
        f"beneficiaries page (first page, {weight['rows']} rows): {weight['bytes']:,} bytes "
        f"({weight['gzip_bytes']:,} gzipped, sent {weight['content_encoding']}), goal < {GOAL_PAGE_BYTES:,}: "
        f"{weight['verdict']}"
    )
    search = [results["by_kind"][kind] for kind in SEARCH_KINDS]
    dashboard = [results["by_kind"][kind] for kind in DASHBOARD_KINDS]
    worst_search = max(row["p95_ms"] or float("inf") for row in search)
    worst_dashboard = max(row["p95_ms"] or float("inf") for row in dashboard)
    search_ok = all(row["verdict"] == "PASS" for row in search)
    dashboard_ok = all(row["verdict"] == "PASS" for row in dashboard)
    results["goals"] = {
        "search_and_list_p95_ms": {"value": worst_search, "goal": f"< {GOAL_SEARCH_P95_MS:g}", "pass": search_ok},
        "dashboard_p95_ms": {"value": worst_dashboard, "goal": f"< {GOAL_DASHBOARD_P95_MS:g}", "pass": dashboard_ok},
        "page_bytes": {"value": weight["bytes"], "goal": f"< {GOAL_PAGE_BYTES}", "pass": weight["verdict"] == "PASS"},
    }
    print()
    for name, goal in results["goals"].items():
        print(f"{name}: worst {goal['value']} ({goal['goal']}) {'PASS' if goal['pass'] else 'MISS'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        common.temp_dir("console", keep=args.keep_temp) as workdir,
        common.ending_cleanly(
            "interrupted; server stopped, scratch database dropped",
            failures=(RuntimeError, sa.exc.SQLAlchemyError),
            logs=workdir,
            log_pattern="gateway.log",
            log_lines=20,
        ),
    ):
        results = run(args, workdir)
    print_report(results)
    print(f"\nresults: {common.write_results('console', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
