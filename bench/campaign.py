"""How fast a bulk campaign goes out: fan-out, dispatch, and the worker's memory at 10,000 and 100,000 recipients.

For each database and size this script seeds synthetic beneficiaries into a fresh database (`devtools.demo.seed_demo`),
creates a campaign and sends it as the CLI does (`create_campaign`, `send_campaign`, `enqueue_fanout`, `kick`), and a
real `flask --app wsgi worker` fans it out and sends it to the provider emulator (a separate process). It reports
the fan-out time, the dispatch rate, the rate of the same provider calls made straight to the emulator with the
Africa's Talking SDK in a plain loop in the same run (goal: gateway / SDK >= RATIO_GOAL), and the worker process
tree's peak memory (goal: the largest size needs at most MEMORY_GOAL times the memory of the smallest).

    .venv/bin/python bench/campaign.py                         # 10,000 and 100,000 recipients, SQLite and PostgreSQL
    .venv/bin/python bench/campaign.py --quick                 # a smoke run in a minute or two
    .venv/bin/python bench/campaign.py --databases sqlite --sizes 10000
    .venv/bin/python bench/campaign.py --text 'Hello {first_name}, ref {reference}.'   # one custom text
    .venv/bin/python bench/campaign.py --profile               # also cProfile an in-process fan-out and drain
    .venv/bin/python bench/campaign.py --recipients 1000000    # fan-out alone at 100,000 and 1,000,000 (PostgreSQL)
    .venv/bin/python bench/campaign.py --latency 0.15 --overload-in-flight 8   # one latency; 429 above 8 calls

Two texts by default, because batching decides the dispatch rate: a personalised notice ({first_name} and
{reference}: every message differs, one provider call per recipient, the issue's "realistic" campaign and the
headline figure) and a shared announcement (no placeholders: full batches of SMS_BATCH_SIZE). Both run on the same
seeded database, one after the other, each with a fresh worker. PostgreSQL: a database is created per size on the
server (trust auth) and dropped afterwards; if the server is unreachable it is skipped with a note.
Every scenario runs at each provider latency of `--latency` (default 0 and 0.15 s, ± `--jitter`), as bench/sms.py
does: the emulator delays each call, the SDK loop at a latency is timed over its first calls only, and the run
reports the most messages the provider took in any one second and the calls it refused with 429.
Results also go to bench/results/ as JSON. The exit status is 0 whenever the benchmark ran, whatever the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

# Run as a script, Python puts bench/ on the path (for `common`, and `sms`: the SMS benchmark's process helpers), not
# the project.
sys.path.insert(0, str(common.PROJECT_ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sms import (  # noqa: E402
    BASELINE_TIMEOUT_SECONDS,
    MIB,
    RATIO_GOAL,
    Children,
    FreshDatabase,
    MemoryWatch,
    add_network_options,
    add_worker_options,
    capped_baseline,
    check_emulator,
    configure_emulator,
    dispatcher_batches,
    latency_label,
    network,
    reset_emulator,
    start_emulator,
    start_workers,
    vm_hwm,
    warm_up,
    worker_env,
)

from config import Settings, load_settings  # noqa: E402
from config.redis import connect, ensure_embedded_redis  # noqa: E402
from devtools.demo import FEMALE_NAMES, MALE_NAMES, STATUS_WEIGHTS, SURNAMES, VILLAGES, seed_demo  # noqa: E402
from models.campaigns import Audience, Campaign  # noqa: E402
from models.clock import as_utc, lesotho_time  # noqa: E402
from models.db import Database  # noqa: E402
from models.messages import ACCEPTED_MESSAGE_STATUSES, MessagePriority, MessageStatus, OutboundMessage  # noqa: E402
from models.people import DISTRICTS, MainNeed, ReturnedFrom, Sex  # noqa: E402
from notifications.campaigns.fanout import FANOUT_LEASE_KEY, enqueue_fanout, run_fanout  # noqa: E402
from notifications.campaigns.lifecycle import create_campaign, preview_campaign, send_campaign  # noqa: E402
from notifications.sms.dispatch import Dispatcher  # noqa: E402
from notifications.sms.providers.africastalking import AfricasTalkingProvider  # noqa: E402
from notifications.sms.queues import kick  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000)
QUICK_SIZES = (1_000, 3_000)
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/postgres"
# The goal for memory: the worker needs at most this many times more for the largest campaign.
MEMORY_GOAL = 1.2
# The dispatch goal (RATIO_GOAL, shared with bench/sms.py) is judged on the dispatch rate proper.

# The settings for the worker: no quiet hours (the run may fall in the evening), a rate limit that never
# binds, batches of 100.
BENCH_RATE_PER_SECOND = 100_000
BENCH_BATCH_SIZE = 100
# seed_demo turns alerts off for about 5% of people; they are left out of campaigns. Seed this many more so that
# the recipients come close to the requested size (the actual count is reported).
ALERTS_ON_SHARE = 0.95

# Texts in both languages (seed_demo gives 70% of people Sesotho), one GSM-7 part each.
PERSONAL_TEXT_EN = (
    "Hello {first_name}, your reintegration grant {reference} is being processed. Dial *123# for its status. "
    "Reply STOP to opt out."
)
PERSONAL_TEXT_ST = (
    "Lumela {first_name}, thuso ea hau {reference} e ntse e sebetsoa. Letsetsa *123# ho bona boemo ba eona. "
    "Araba STOP ho emisa."
)
SHARED_TEXT_EN = (
    "Returnee programme: grant payments for December start on Monday 7th. Dial *123# to check your grant. "
    "Reply STOP to opt out."
)
SHARED_TEXT_ST = (
    "Lenaneo la ba khutlileng: ho lefa lithuso tsa December ho qala Mantaha 7. Letsetsa *123# ho bona thuso ea hau. "
    "Araba STOP ho emisa."
)
DEFAULT_SCENARIOS = (("personalised", PERSONAL_TEXT_EN, PERSONAL_TEXT_ST), ("shared", SHARED_TEXT_EN, SHARED_TEXT_ST))

# How often to look at the campaign while the worker works; the in-flight count is a bigger query, read less often.
FANOUT_POLL_SECONDS = 0.1
IN_FLIGHT_POLL_SECONDS = 0.5
DEFAULT_TIMEOUT_SECONDS = 1800
# Reading back what the emulator recorded (up to 100,000 messages) takes longer than one provider call.
EMULATOR_READ_TIMEOUT_SECONDS = BASELINE_TIMEOUT_SECONDS * 4
# The logs shown when a campaign fails: a worker's, since the worker is what dies.
WORKER_LOGS = "worker-*.log"
# A worker that does not come up is tried again this often, this long apart (see `start_workers_patiently`).
WORKER_START_ATTEMPTS = 3
WORKER_RETRY_SECONDS = 10
PROFILE_SIZE = 10_000
PROFILE_TOP = 25
BENCH_ACTOR = "bench"


# -- databases ---------------------------------------------------------------------------------------------------------


class ScratchDatabase(FreshDatabase):
    """`FreshDatabase` by kind ("sqlite" or "postgresql"); the SQLite file also goes on exit, as large sizes add up."""

    def __init__(self, kind: str, scratch: Path, label: str, postgres_url: str, benchmark: str = "campaign") -> None:
        super().__init__(postgres_url if kind == "postgresql" else None, scratch, label, benchmark=benchmark)

    def __exit__(self, *exc_info) -> None:
        super().__exit__(*exc_info)
        if not self.postgres:
            path = Path(self.url.removeprefix("sqlite:///"))
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)


def postgres_reachable(url: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        common.admin_execute(url, "SELECT 1")
    except sa.exc.SQLAlchemyError as exc:
        return str(exc).splitlines()[0]
    return None


def seed(db: Database, size: int) -> tuple[int, float]:
    """Enough synthetic beneficiaries for about `size` recipients; returns (beneficiaries, seconds)."""
    beneficiaries = math.ceil(size / ALERTS_ON_SHARE)
    started = time.perf_counter()
    with db.session() as session:
        seed_demo(session, beneficiaries)
    return beneficiaries, time.perf_counter() - started


# -- the campaign ------------------------------------------------------------------------------------------------------


def new_campaign(db: Database, name: str, text_en: str, text_st: str, settings: Settings) -> tuple[int, int]:
    """A draft campaign to every registered beneficiary; returns (id, recipients the preview announces)."""
    with db.session() as session:
        campaign = create_campaign(
            session, name=name, text_en=text_en, text_st=text_st, audience=Audience(), created_by=BENCH_ACTOR
        )
        preview = preview_campaign(session, campaign, settings)
        return campaign.id, preview.total


def start_sending(db: Database, connection: redis.Redis, campaign_id: int) -> None:
    """What `flask --app wsgi campaigns send` does: move to sending, commit, enqueue the fan-out, kick."""
    with db.session() as session:
        send_campaign(session, session.get(Campaign, campaign_id))
    enqueue_fanout(connection, campaign_id)
    kick(connection, MessagePriority.BULK)


def fanout_done(db: Database, campaign_id: int) -> bool:
    with db.session() as session:
        return session.execute(sa.select(Campaign.fanout_done).where(Campaign.id == campaign_id)).scalar_one()


def in_flight(db: Database, campaign_id: int) -> int:
    """Messages queued or being sent (the (campaign_id, status) index answers it)."""
    with db.session() as session:
        return session.execute(
            sa.select(sa.func.count())
            .select_from(OutboundMessage)
            .where(
                OutboundMessage.campaign_id == campaign_id,
                OutboundMessage.status.in_((MessageStatus.QUEUED, MessageStatus.SUBMITTING)),
            )
        ).scalar_one()


@dataclass
class Dispatched:
    statuses: dict[str, int]
    accepted: int
    first_accepted: datetime | None  # when the worker recorded the first accepted round
    last_accepted: datetime | None
    in_first_round: int  # messages recorded at `first_accepted`: sent before the first-to-last window opens


def dispatched(db: Database, campaign_id: int) -> Dispatched:
    """The campaign's messages by status, and the first and last moments the worker recorded an accepted round."""
    accepted_rows = sa.and_(
        OutboundMessage.campaign_id == campaign_id, OutboundMessage.status.in_(ACCEPTED_MESSAGE_STATUSES)
    )
    with db.session() as session:
        statuses = dict(
            session.execute(
                sa.select(OutboundMessage.status, sa.func.count())
                .where(OutboundMessage.campaign_id == campaign_id)
                .group_by(OutboundMessage.status)
            ).all()
        )
        first, last = session.execute(
            sa.select(sa.func.min(OutboundMessage.submitted_at), sa.func.max(OutboundMessage.submitted_at)).where(
                accepted_rows
            )
        ).one()
        in_first_round = 0
        if first is not None:
            in_first_round = session.execute(
                sa.select(sa.func.count()).where(accepted_rows, OutboundMessage.submitted_at == first)
            ).scalar_one()
    return Dispatched(
        statuses={str(status): count for status, count in statuses.items()},
        accepted=sum(count for status, count in statuses.items() if status in ACCEPTED_MESSAGE_STATUSES),
        first_accepted=as_utc(first) if first else None,
        last_accepted=as_utc(last) if last else None,
        in_first_round=in_first_round,
    )


def campaign_messages(db: Database, campaign_id: int) -> list[tuple[int, str, str]]:
    """(id, phone, text) of every message the fan-out wrote, in id order: the order the dispatcher takes them."""
    with db.session() as session:
        return [
            tuple(row)
            for row in session.execute(
                sa.select(OutboundMessage.id, OutboundMessage.phone, OutboundMessage.body)
                .where(OutboundMessage.campaign_id == campaign_id)
                .order_by(OutboundMessage.id)
            )
        ]


# -- the worker --------------------------------------------------------------------------------------------------------


def start_workers_patiently(children: Children, count: int, env: dict[str, str], connection, log_dir: Path):
    """`start_workers`, tried again a few times: on a shared working tree, another edit can break imports briefly."""
    for attempt in range(WORKER_START_ATTEMPTS):
        try:
            return start_workers(children, count, env, connection, log_dir)
        except RuntimeError:
            if attempt == WORKER_START_ATTEMPTS - 1:
                raise
            print(f"  the worker did not start; trying again in {WORKER_RETRY_SECONDS} s", flush=True)
            time.sleep(WORKER_RETRY_SECONDS)
    raise AssertionError("unreachable")


# -- one scenario ------------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    database: str
    size: int
    scenario: str
    beneficiaries: int
    recipients: int  # messages the fan-out wrote
    previewed: int  # recipients the preview announced
    provider_calls_gateway: int
    provider_calls_baseline: int
    fanout_seconds: float | None
    dispatch_seconds: float | None  # first to last accepted round, as the worker recorded them
    dispatch_rate: float | None  # messages after the first round / dispatch_seconds
    end_to_end_seconds: float | None  # from the send to the last accepted message (fan-out included)
    end_to_end_rate: float | None
    baseline_seconds: float
    baseline_rate: float
    ratio: float | None  # dispatch_rate / baseline_rate: the goal's figure
    end_to_end_ratio: float | None
    verdict: str
    peak_rss: int
    peak_pss: int
    fanout_peak_pss: int  # the tree's peak until the fan-out was done
    idle_pss: int  # the tree before the send
    worker_hwm: int
    child_hwm: int
    peak_processes: int
    busy_cores_gateway: float
    busy_cores_baseline: float
    statuses: dict[str, int]
    emulator_gateway: dict
    emulator_baseline: dict
    notes: list[str] = field(default_factory=list)
    latency: float = 0.0  # the provider's, in seconds (± the run's jitter)


def run_scenario(
    db: Database,
    kind: str,
    size: int,
    beneficiaries: int,
    scenario: tuple[str, str, str],
    args,
    *,
    children: Children,
    scratch: Path,
    redis_url: str,
    emulator_url: str,
    latency: float = 0.0,
) -> ScenarioResult:
    name, text_en, text_st = scenario
    if latency:
        name = f"{name} {latency_label(latency)}"
    notes: list[str] = []
    connection = connect(redis_url)
    connection.flushdb()
    configure_emulator(emulator_url, **network(args, latency))
    reset_emulator(emulator_url)
    env = {
        **worker_env(db.url, redis_url, emulator_url, BENCH_BATCH_SIZE),
        "SMS_RATE_PER_SECOND": str(BENCH_RATE_PER_SECOND),
    }
    settings = load_settings(env)
    campaign_id, previewed = new_campaign(db, f"bench {name} {size}", text_en, text_st, settings)

    # The worker starts first: its start-up sweep would otherwise begin the fan-out before the clock.
    processes = start_workers_patiently(children, args.workers, env, connection, scratch)
    watch = MemoryWatch([process.pid for process in processes])
    watch.sample()
    idle_pss = watch.peak_pss
    fanout_seconds = fanout_peak_pss = None
    finished = False
    try:
        watch.start()
        cpu = common.MachineCpu()
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        start_sending(db, connection, campaign_id)
        next_in_flight = 0.0
        while time.perf_counter() - started < args.timeout:
            now = time.perf_counter()
            if fanout_seconds is None and fanout_done(db, campaign_id):
                fanout_seconds = now - started
                fanout_peak_pss = watch.peak_pss
            if fanout_seconds is not None and now >= next_in_flight:
                next_in_flight = now + IN_FLIGHT_POLL_SECONDS
                if in_flight(db, campaign_id) == 0:
                    finished = True
                    break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a worker died mid-run; see {scratch}/worker-*.log")
            time.sleep(FANOUT_POLL_SECONDS)
        busy_gateway = cpu.busy_cores()
        watch.stop()
        worker_hwm = max(vm_hwm(process.pid) for process in processes)
    finally:
        if watch.is_alive():
            watch.stop()
        for process in processes:
            children.stop(process)
    if not finished:
        notes.append(f"gateway: not finished within {args.timeout:.0f} s")

    result = dispatched(db, campaign_id)
    messages = campaign_messages(db, campaign_id)
    expected = {(phone, text) for _, phone, text in messages}
    emulator_gateway = check_emulator(emulator_url, expected, EMULATOR_READ_TIMEOUT_SECONDS)
    if not emulator_gateway["exact"]:
        notes.append(f"gateway: the emulator did not receive exactly the {len(messages)} messages")
    if result.accepted != len(messages):
        notes.append(f"gateway: {result.accepted} of {len(messages)} accepted; statuses {result.statuses}")
    if len(messages) != previewed:
        notes.append(f"the preview announced {previewed} recipients, the fan-out wrote {len(messages)}")

    batches = dispatcher_batches(messages, BENCH_BATCH_SIZE)
    reset_emulator(emulator_url)
    baseline_seconds, busy_baseline, baselined = capped_baseline(emulator_url, batches, network(args, latency))
    emulator_baseline = check_emulator(emulator_url, baselined, EMULATOR_READ_TIMEOUT_SECONDS)
    if not emulator_baseline["exact"]:
        notes.append(f"baseline: the emulator did not receive exactly the {len(baselined)} messages")
    reset_emulator(emulator_url)

    dispatch_seconds = dispatch_rate = end_to_end_seconds = end_to_end_rate = None
    if finished and result.first_accepted and result.last_accepted:
        dispatch_seconds = (result.last_accepted - result.first_accepted).total_seconds()
        if dispatch_seconds > 0:
            dispatch_rate = (result.accepted - result.in_first_round) / dispatch_seconds
        end_to_end_seconds = (result.last_accepted - sent_at).total_seconds()
        end_to_end_rate = result.accepted / end_to_end_seconds
    baseline_rate = len(baselined) / baseline_seconds if baseline_seconds else 0.0
    ratio = dispatch_rate / baseline_rate if dispatch_rate and baseline_rate else None
    end_to_end_ratio = end_to_end_rate / baseline_rate if end_to_end_rate and baseline_rate else None
    return ScenarioResult(
        database=kind,
        size=size,
        scenario=name,
        beneficiaries=beneficiaries,
        recipients=len(messages),
        previewed=previewed,
        provider_calls_gateway=emulator_gateway["requests"],
        provider_calls_baseline=len(batches),
        fanout_seconds=fanout_seconds,
        dispatch_seconds=dispatch_seconds,
        dispatch_rate=dispatch_rate,
        end_to_end_seconds=end_to_end_seconds,
        end_to_end_rate=end_to_end_rate,
        baseline_seconds=baseline_seconds,
        baseline_rate=baseline_rate,
        ratio=ratio,
        end_to_end_ratio=end_to_end_ratio,
        verdict="PASS" if ratio is not None and ratio >= RATIO_GOAL else "MISS",
        peak_rss=watch.peak_rss,
        peak_pss=watch.peak_pss,
        fanout_peak_pss=fanout_peak_pss or 0,
        idle_pss=idle_pss,
        worker_hwm=worker_hwm,
        child_hwm=watch.child_hwm,
        peak_processes=watch.peak_processes,
        busy_cores_gateway=busy_gateway,
        busy_cores_baseline=busy_baseline,
        statuses=result.statuses,
        emulator_gateway=emulator_gateway,
        emulator_baseline=emulator_baseline,
        notes=notes,
        latency=latency,
    )


# -- profiling ---------------------------------------------------------------------------------------------------------


@contextmanager
def profiled(label: str, out: io.StringIO) -> Iterator[None]:
    """cProfile the block; write its wall time, the growth of this process's peak RSS and the top functions."""
    profiler = cProfile.Profile()
    hwm_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        seconds = time.perf_counter() - started
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - hwm_before
        out.write(f"\n=== {label}: {seconds:.2f} s, peak RSS of this process grew {grown / MIB:.1f} MiB\n")
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(PROFILE_TOP)
        stats.sort_stats("tottime").print_stats(PROFILE_TOP)


def profile_campaign(kind: str, args, scratch: Path, redis_url: str, emulator_url: str) -> str:
    """cProfile of `run_fanout` and then `Dispatcher.drain` in this process, built as the worker builds them."""
    out = io.StringIO()
    name, text_en, text_st = scenarios(args)[0]
    connection = connect(redis_url)
    connection.flushdb()
    reset_emulator(emulator_url)
    with ScratchDatabase(kind, scratch, "profile", args.postgres_url) as scratch_db:
        db = Database(scratch_db.url)
        try:
            beneficiaries, _ = seed(db, args.profile_size)
            env = {
                **worker_env(db.url, redis_url, emulator_url, BENCH_BATCH_SIZE),
                "SMS_RATE_PER_SECOND": str(BENCH_RATE_PER_SECOND),
            }
            settings = load_settings(env)
            campaign_id, _ = new_campaign(db, f"profile {name}", text_en, text_st, settings)
            with db.session() as session:
                send_campaign(session, session.get(Campaign, campaign_id))
            out.write(f"{kind}, {beneficiaries} beneficiaries, {name} text\n")
            with profiled("run_fanout", out):
                written = run_fanout(db, connection, campaign_id)
            out.write(f"(wrote {written} messages)\n")
            dispatcher = Dispatcher(
                settings=settings, db=db, redis=connection, provider=AfricasTalkingProvider.from_settings(settings)
            )
            try:
                with profiled("Dispatcher.drain(bulk)", out):
                    handled, _ = dispatcher.drain(MessagePriority.BULK)
            finally:
                dispatcher.close()
            out.write(f"(sent {handled} messages)\n")
        finally:
            db.dispose()
    reset_emulator(emulator_url)
    return out.getvalue()


# -- fan-out at national scale (--recipients) --------------------------------------------------------------------------
#
# At a million recipients the question is the fan-out alone: does it finish within FANOUT_GOALS, and does the worker's
# memory stay flat? Sending a million messages to the emulator would take the better part of an hour and measure the
# dispatcher again, so this mode runs the worker under quiet hours that cover the whole run: it fans the campaign out
# (as it does for a campaign sent in the evening) and sends nothing. The audience is seeded with one INSERT … SELECT
# per table (`seed_audience`): seed_demo's histories take minutes at this size and the fan-out reads none of them.

# The comparison size for --recipients: the memory goal is the largest size over this one.
FANOUT_BASE_SIZE = 100_000
# The fan-out goals on PostgreSQL, seconds by recipients.
FANOUT_GOALS = {100_000: 10.0, 1_000_000: 60.0}
FANOUT_TIMEOUT_SECONDS = 900
# Quiet hours for the fan-out-only worker: from an hour before the run to this many hours after it.
QUIET_SPAN_HOURS = 6
# Contacts whose alerts are off in the seeded audience: one in SEED_ALERTS_OFF_EVERY (seed_demo's 5%).
SEED_ALERTS_OFF_EVERY = 20
# Sesotho for seven contacts in ten (seed_demo's share).
SEED_SESOTHO_OF_TEN = 7
SEED_PHONE_BASE = 50_000_000  # +266 5xxxxxxx, one distinct number per contact id
UNREACHABLE_PROVIDER_URL = "http://127.0.0.1:9"


def _series(kind: str, count: int) -> str:
    """A SELECT of the whole numbers 1..count as column `g`, in the database's dialect."""
    if kind == "postgresql":
        return f"SELECT g FROM generate_series(1, {count}) AS g"
    return f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count}) SELECT g FROM s"


def _pick(values: tuple[str, ...], key: str) -> str:
    """A SQL CASE choosing one of `values` by `key` modulo their number (portable: no arrays in SQLite)."""
    quoted = (value.replace("'", "''") for value in values)
    whens = " ".join(f"WHEN {number} THEN '{value}'" for number, value in enumerate(quoted))
    return f"(CASE ({key}) % {len(values)} {whens} END)"


def seed_audience(db: Database, kind: str, count: int) -> float:
    """`count` registered beneficiaries (contact, beneficiary, grant) with one INSERT … SELECT each; the seconds.

    Names, districts, languages and grant statuses vary with the id; about one contact in SEED_ALERTS_OFF_EVERY has
    alerts off. No grant events, national IDs or histories: the fan-out reads none of them.
    """
    pad = "lpad(g::text, 7, '0')" if kind == "postgresql" else "printf('%07d', g)"
    now = "CURRENT_TIMESTAMP"
    first = _pick(tuple(name for pair in zip(FEMALE_NAMES, MALE_NAMES, strict=False) for name in pair), "g")
    statements = [
        f"INSERT INTO contacts (id, phone, language, alerts_on, created_at, updated_at) "
        f"SELECT g, '+266' || ({SEED_PHONE_BASE} + g), CASE WHEN g % 10 < {SEED_SESOTHO_OF_TEN} THEN 'st' ELSE 'en' "
        f"END, g % {SEED_ALERTS_OFF_EVERY} <> 0, {now}, {now} FROM ({_series(kind, count)}) AS s",
        f"INSERT INTO beneficiaries (id, contact_id, reference, full_name, sex, year_of_birth, district, village, "
        f"returned_from, year_of_return, household_size, main_need, consent_at, registered_via, created_at, "
        f"updated_at) SELECT g, g, {pad} || '0', {first} || ' ' || {_pick(SURNAMES, 'g / 7')}, "
        f"CASE WHEN g % 2 = 0 THEN '{Sex.FEMALE}' ELSE '{Sex.MALE}' END, 1960 + g % 45, {_pick(DISTRICTS, 'g / 3')}, "
        f"{_pick(VILLAGES, 'g / 11')}, '{ReturnedFrom.SOUTH_AFRICA}', 2020, 1 + g % 8, '{MainNeed.BUSINESS}', "
        f"{now}, 'ussd', {now}, {now} "
        f"FROM ({_series(kind, count)}) AS s",
        f"INSERT INTO grants (id, beneficiary_id, status, created_at, updated_at) "
        f"SELECT g, g, {_pick(tuple(STATUS_WEIGHTS), 'g / 13')}, {now}, {now} FROM ({_series(kind, count)}) AS s",
    ]
    started = time.perf_counter()
    with db.engine.begin() as connection:
        if kind == "postgresql":
            connection.execute(sa.text("SET LOCAL statement_timeout = 0"))  # a million rows take longer than a hop
        for statement in statements:
            connection.execute(sa.text(statement))
        if kind == "postgresql":
            for table in ("contacts", "beneficiaries", "grants"):
                connection.execute(sa.text(f"SELECT setval('{table}_id_seq', {count})"))
    if kind == "postgresql":
        # What autovacuum has long done to a real register: statistics, and pages marked all-visible.
        common.admin_execute(db.url, "VACUUM ANALYZE")
    return time.perf_counter() - started


def quiet_all_run(now: datetime | None = None) -> str:
    """QUIET_HOURS covering the run (Lesotho time), so that a worker fans out and sends nothing."""
    local = lesotho_time(now or datetime.now(UTC))
    start = local - timedelta(hours=1)
    end = local + timedelta(hours=QUIET_SPAN_HOURS)
    return f"{start:%H:%M}-{end:%H:%M}"


@dataclass
class FanoutResult:
    database: str
    size: int
    beneficiaries: int
    seed_seconds: float
    recipients: int  # messages the fan-out wrote
    previewed: int
    excluded_opted_out: int
    fanout_seconds: float | None
    goal_seconds: float | None
    verdict: str
    peak_rss: int
    peak_pss: int
    idle_rss: int
    worker_hwm: int
    child_hwm: int
    busy_cores: float
    notes: list[str] = field(default_factory=list)


def run_fanout_only(
    db: Database,
    kind: str,
    size: int,
    beneficiaries: int,
    seed_seconds: float,
    args,
    *,
    children: Children,
    scratch: Path,
    redis_url: str,
) -> FanoutResult:
    """A real worker fans a personalised campaign out to `size` recipients under all-day quiet hours; timed."""
    notes: list[str] = []
    connection = connect(redis_url)
    connection.flushdb()
    env = {
        # No emulator: nothing is sent under these quiet hours, and a call that was made would fail and show.
        **worker_env(db.url, redis_url, UNREACHABLE_PROVIDER_URL, BENCH_BATCH_SIZE),
        "QUIET_HOURS": quiet_all_run(),
    }
    settings = load_settings(env)
    _, text_en, text_st = DEFAULT_SCENARIOS[0]
    campaign_id, previewed = new_campaign(db, f"bench fan-out {size}", text_en, text_st, settings)
    processes = start_workers_patiently(children, 1, env, connection, scratch)
    watch = MemoryWatch([process.pid for process in processes])
    watch.sample()
    idle_rss = watch.peak_rss
    fanout_seconds = None
    try:
        watch.start()
        cpu = common.MachineCpu()
        started = time.perf_counter()
        start_sending(db, connection, campaign_id)
        while time.perf_counter() - started < args.timeout:
            if (
                fanout_done(db, campaign_id)
                and connection.get(FANOUT_LEASE_KEY.format(campaign_id=campaign_id)) is None
            ):
                fanout_seconds = time.perf_counter() - started
                break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"the worker died mid-run; see {scratch}/worker-*.log")
            time.sleep(FANOUT_POLL_SECONDS)
        busy = cpu.busy_cores()
        watch.stop()
        worker_hwm = max(vm_hwm(process.pid) for process in processes)
    finally:
        if watch.is_alive():
            watch.stop()
        for process in processes:
            children.stop(process)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        excluded = campaign.excluded_opted_out
        written, queued = session.execute(
            sa.select(sa.func.count(), sa.func.count().filter(OutboundMessage.status == MessageStatus.QUEUED)).where(
                OutboundMessage.campaign_id == campaign_id
            )
        ).one()
    if fanout_seconds is None:
        notes.append(f"the fan-out did not finish within {args.timeout:.0f} s")
    if written != previewed:
        notes.append(f"the preview announced {previewed} recipients, the fan-out wrote {written}")
    if queued != written:
        notes.append(f"{written - queued} messages left the queue during quiet hours")
    goal = FANOUT_GOALS.get(size) if kind == "postgresql" else None
    verdict = "-" if goal is None or fanout_seconds is None else ("PASS" if fanout_seconds <= goal else "MISS")
    return FanoutResult(
        database=kind,
        size=size,
        beneficiaries=beneficiaries,
        seed_seconds=seed_seconds,
        recipients=written,
        previewed=previewed,
        excluded_opted_out=excluded,
        fanout_seconds=fanout_seconds,
        goal_seconds=goal,
        verdict=verdict,
        peak_rss=watch.peak_rss,
        peak_pss=watch.peak_pss,
        idle_rss=idle_rss,
        worker_hwm=worker_hwm,
        child_hwm=watch.child_hwm,
        busy_cores=busy,
        notes=notes,
    )


def fanout_sizes(args) -> list[int]:
    """--recipients N: N and FANOUT_BASE_SIZE (the memory goal's comparison); several sizes: those."""
    sizes = set(args.recipients)
    if len(sizes) == 1 and args.recipients[0] > FANOUT_BASE_SIZE:
        sizes.add(FANOUT_BASE_SIZE)
    return sorted(sizes)


def fanout_memory_ratio(results: list[FanoutResult]) -> dict | None:
    """Peak RSS (and PSS) of the worker tree, largest size over smallest, per database."""
    runs = sorted(results, key=lambda r: r.size)
    if len(runs) < 2 or not runs[0].peak_rss:
        return None
    small, large = runs[0], runs[-1]
    rss_ratio = large.peak_rss / small.peak_rss
    return {
        "database": small.database,
        "small": small.size,
        "large": large.size,
        "rss_ratio": rss_ratio,
        "pss_ratio": large.peak_pss / small.peak_pss if small.peak_pss else None,
        "verdict": "PASS" if rss_ratio <= MEMORY_GOAL else "MISS",
    }


def print_fanout_table(results: list[FanoutResult], ratios: list[dict], skipped: list[str]) -> None:
    header = (
        f"{'db':<10} {'recipients':>10} {'seeded':>9} {'seed s':>6} {'fan-out s':>9} {'goal s':>6} {'verdict':>7} "
        f"{'peak RSS':>9} {'peak PSS':>9} {'idle RSS':>9} {'busy':>4}"
    )
    print()
    print("Campaign fan-out only (a worker under quiet hours: rows written, nothing sent)")
    print(header)
    print("-" * len(header))
    for r in results:
        goal = f"{r.goal_seconds:.0f}" if r.goal_seconds else "-"
        print(
            f"{r.database:<10} {r.recipients:>10} {r.beneficiaries:>9} {r.seed_seconds:>6.1f} "
            f"{_seconds(r.fanout_seconds):>9} {goal:>6} {r.verdict:>7} {r.peak_rss / MIB:>7.1f}Mi "
            f"{r.peak_pss / MIB:>7.1f}Mi {r.idle_rss / MIB:>7.1f}Mi {r.busy_cores:>4.1f}"
        )
    for m in ratios:
        pss = f"{m['pss_ratio']:.2f}" if m["pss_ratio"] else "-"
        print(
            f"worker peak RSS {m['database']} {m['large']}/{m['small']}: {m['rss_ratio']:.2f} (goal <= {MEMORY_GOAL}) "
            f"{m['verdict']}  (PSS {pss})"
        )
    for r in results:
        for note in r.notes:
            print(f"! {r.database} {r.size}: {note}")
    for note in skipped:
        print(f"! {note}")
    print(
        "fan-out s: from the send to the campaign's fanout_done with the job's lease released; seeded: beneficiaries "
        f"(1 in {SEED_ALERTS_OFF_EVERY} has alerts off); busy: cores busy machine-wide (of {os.cpu_count()})"
    )


def reachable_databases(args) -> tuple[list[str], list[str]]:
    """The databases asked for that can run here, and a line for each left out (PostgreSQL when unreachable)."""
    databases, skipped = list(args.databases), []
    if "postgresql" in databases:
        why = postgres_reachable(args.postgres_url)
        if why:
            databases.remove("postgresql")
            skipped.append(f"PostgreSQL skipped: {args.postgres_url} unreachable ({why})")
            print(skipped[-1], flush=True)
    return databases, skipped


def fanout_main(args) -> int:
    """The --recipients mode: seed, fan out in a real worker, report; PostgreSQL unless --databases says."""
    results: list[FanoutResult] = []
    databases, skipped = reachable_databases(args)
    with (
        common.temp_dir("fanout") as scratch,
        Children() as children,
        common.ending_cleanly(
            "\ninterrupted; stopping the worker, dropping the databases",
            failures=(RuntimeError,),
            logs=scratch,
            log_pattern=WORKER_LOGS,
        ),
    ):
        redis_url = args.redis_url or ensure_embedded_redis(scratch / "redis")
        for kind in databases:
            for size in fanout_sizes(args):
                label = f"{kind}-{size}"
                with ScratchDatabase(kind, scratch, label, args.postgres_url, benchmark="fanout") as scratch_db:
                    db = Database(scratch_db.url)
                    try:
                        beneficiaries = math.ceil(size / ALERTS_ON_SHARE)
                        seconds = seed_audience(db, kind, beneficiaries)
                        print(f"{kind} {size}: seeded {beneficiaries} beneficiaries in {seconds:.1f} s", flush=True)
                        result = run_fanout_only(
                            db,
                            kind,
                            size,
                            beneficiaries,
                            seconds,
                            args,
                            children=children,
                            scratch=scratch,
                            redis_url=redis_url,
                        )
                    finally:
                        db.dispose()
                results.append(result)
                print(
                    f"  fan-out {_seconds(result.fanout_seconds)} s for {result.recipients} recipients, "
                    f"worker peak RSS {result.peak_rss / MIB:.1f} MiB",
                    flush=True,
                )
    if not results:
        print("no fan-out ran; nothing to report", file=sys.stderr)
        return 1
    ratios = [
        ratio
        for kind in DATABASES
        if (ratio := fanout_memory_ratio([r for r in results if r.database == kind])) is not None
    ]
    print_fanout_table(results, ratios, skipped)
    document = {
        "benchmark": "campaign-fanout",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_description(brief=True),
        "options": {key: value for key, value in vars(args).items() if key != "postgres_url"},
        "goals_seconds": FANOUT_GOALS,
        "memory_goal": MEMORY_GOAL,
        "results": [asdict(result) for result in results],
        "memory_ratios": ratios,
        "skipped": skipped,
    }
    print(f"results: {common.write_results('campaign-fanout', document)}")
    return 0


# -- the run -----------------------------------------------------------------------------------------------------------


def scenarios(args) -> list[tuple[str, str, str]]:
    """The default personalised and shared texts, or each --text (the same text for both languages)."""
    if args.text:
        return [(f"text-{number}", text, text) for number, text in enumerate(args.text, start=1)]
    return [scenario for scenario in DEFAULT_SCENARIOS if scenario[0] in args.scenarios]


def memory_ratios(results: list[ScenarioResult]) -> list[dict]:
    """Per database and scenario: peak memory of the largest size over the smallest."""
    ratios = []
    keys = sorted({(r.database, r.scenario) for r in results}, key=lambda key: (DATABASES.index(key[0]), key[1]))
    for database, scenario in keys:
        runs = sorted((r for r in results if (r.database, r.scenario) == (database, scenario)), key=lambda r: r.size)
        if len(runs) < 2 or not runs[0].peak_pss:
            continue
        small, large = runs[0], runs[-1]
        pss_ratio = large.peak_pss / small.peak_pss
        ratios.append(
            {
                "database": database,
                "scenario": scenario,
                "small": small.size,
                "large": large.size,
                "pss_ratio": pss_ratio,
                "rss_ratio": large.peak_rss / small.peak_rss,
                "hwm_ratio": large.worker_hwm / small.worker_hwm if small.worker_hwm else None,
                "verdict": "PASS" if pss_ratio <= MEMORY_GOAL else "MISS",
            }
        )
    return ratios


def _seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _rate(value: float | None) -> str:
    return f"{value:.0f}" if value else "-"


def print_table(results: list[ScenarioResult], ratios: list[dict], skipped: list[str]) -> None:
    header = (
        f"{'db':<10} {'text':<12} {'size':>6} {'recips':>6} {'calls':>6} {'fan-out s':>9} {'disp msg/s':>10} "
        f"{'e2e msg/s':>9} {'SDK msg/s':>9} {'ratio':>5} {'goal':>4} {'e2e r':>5} {'peak PSS':>9} {'peak RSS':>9} "
        f"{'busy g/b':>8}"
    )
    print()
    print(f"Campaign fan-out and dispatch; goal: dispatch / SDK loop >= {RATIO_GOAL}")
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        e2e = f"{r.end_to_end_ratio:.2f}" if r.end_to_end_ratio is not None else "-"
        print(
            f"{r.database:<10} {r.scenario:<12} {r.size:>6} {r.recipients:>6} {r.provider_calls_gateway:>6} "
            f"{_seconds(r.fanout_seconds):>9} {_rate(r.dispatch_rate):>10} {_rate(r.end_to_end_rate):>9} "
            f"{r.baseline_rate:>9.0f} {ratio:>5} {r.verdict:>4} {e2e:>5} {r.peak_pss / MIB:>7.1f}Mi "
            f"{r.peak_rss / MIB:>7.1f}Mi {r.busy_cores_gateway:>3.1f}/{r.busy_cores_baseline:<3.1f}"
        )
    if ratios:
        print()
        print(f"Worker peak memory, largest / smallest size; goal: <= {MEMORY_GOAL}")
        for m in ratios:
            hwm = f"{m['hwm_ratio']:.2f}" if m["hwm_ratio"] else "-"
            print(
                f"{m['database']:<10} {m['scenario']:<12} {m['large']}/{m['small']}: PSS {m['pss_ratio']:.2f} "
                f"{m['verdict']}  (RSS {m['rss_ratio']:.2f}, worker VmHWM {hwm})"
            )
    for r in results:
        for note in r.notes:
            print(f"! {r.database} {r.scenario} {r.size}: {note}")
    for note in skipped:
        print(f"! {note}")
    print(
        "disp msg/s: messages / (last - first accepted round, as recorded by the worker), what the ratio uses; "
        "e2e: from the send (fan-out included) to the last accepted message"
    )
    print(
        "calls: provider calls the gateway made (SDK loop: the same texts grouped as the dispatcher groups them); "
        "peak PSS/RSS: worker process tree (worker, work-horse, scheduler), sampled every 50 ms"
    )
    print(
        f"busy g/b: cores busy machine-wide (of {os.cpu_count()}) during the gateway / SDK phase, everything included"
    )


def network_runs(args) -> list[tuple[tuple[str, str, str], float]]:
    """Every scenario at every latency of the run, the latencies inside: one seeded database serves them all."""
    return [(scenario, latency) for scenario in scenarios(args) for latency in args.latency]


def print_network_table(results: list[ScenarioResult], args) -> None:
    """Per latency: the worker's dispatch rate against the SDK loop's, the busiest second at the provider, 429s."""
    print()
    print(
        f"Over the network: {args.workers} worker(s), jitter ±{args.jitter * 1000:.0f} ms"
        + (f", 429 above {args.overload_in_flight} calls in flight" if args.overload_in_flight else "")
        + (f", 429 above {args.overload_rate:g} calls/s" if args.overload_rate else "")
    )
    header = (
        f"{'db':<10} {'text':<18} {'size':>6} {'latency':>7} {'disp msg/s':>10} {'per worker':>10} "
        f"{'SDK loop msg/s':>14} {'ratio':>6} {'busiest 1 s':>11} {'429s':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.database:<10} {r.scenario:<18} {r.size:>6} {latency_label(r.latency):>7} {_rate(r.dispatch_rate):>10} "
            f"{_rate((r.dispatch_rate or 0) / args.workers):>10} {r.baseline_rate:>14.1f} {(r.ratio or 0):>6.2f} "
            f"{r.emulator_gateway['worst_second']:>11} {r.emulator_gateway['refused_429']:>5}"
        )


def results_document(results: list[ScenarioResult], ratios: list[dict], skipped: list[str], args, profile) -> dict:
    return {
        "benchmark": "campaign",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_description(brief=True),
        "options": {key: value for key, value in vars(args).items() if key != "postgres_url"},
        "settings": {"SMS_BATCH_SIZE": BENCH_BATCH_SIZE, "SMS_RATE_PER_SECOND": BENCH_RATE_PER_SECOND},
        "ratio_goal": RATIO_GOAL,
        "memory_goal": MEMORY_GOAL,
        "scenarios": [asdict(result) for result in results],
        "memory_ratios": ratios,
        "skipped": skipped,
        "profile": profile,
    }


def _sizes(raw: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are comma-separated whole numbers, got {raw!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _databases(raw: str) -> list[str]:
    kinds = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = set(kinds) - set(DATABASES)
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"databases are a comma-separated subset of {','.join(DATABASES)}")
    return kinds


def _scenarios(raw: str) -> list[str]:
    known = [name for name, _, _ in DEFAULT_SCENARIOS]
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names or set(names) - set(known):
        raise argparse.ArgumentTypeError(f"scenarios are a comma-separated subset of {','.join(known)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/campaign.py", description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=_sizes, help=f"recipients per campaign (default {','.join(map(str, DEFAULT_SIZES))})"
    )
    parser.add_argument(
        "--databases", type=_databases, help="default sqlite,postgresql (with --recipients: postgresql)"
    )
    parser.add_argument(
        "--text",
        action="append",
        help="a campaign text (repeatable; placeholders {first_name} {reference} {district}); default: a personalised "
        "notice and a shared announcement",
    )
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=[name for name, _, _ in DEFAULT_SCENARIOS],
        help="which default texts: personalised,shared (default both)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for --databases postgresql")
    add_worker_options(parser, DEFAULT_TIMEOUT_SECONDS, "longest wait per campaign")
    add_network_options(parser)
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {','.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--profile", action="store_true", help="also cProfile an in-process run_fanout and drain")
    parser.add_argument(
        "--profile-size", type=int, default=PROFILE_SIZE, help="recipients for --profile (default %(default)s)"
    )
    parser.add_argument(
        "--recipients",
        type=_sizes,
        help=f"fan-out only, at these sizes (one size N also runs {FANOUT_BASE_SIZE:,} for the memory ratio): "
        "audience seeded set-based, a worker under quiet hours, nothing sent; PostgreSQL unless --databases names "
        "sqlite",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.databases is None:
        args.databases = ["postgresql"] if args.recipients else list(DATABASES)
    if args.workers < 1:
        parser.error("--workers must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.recipients:
        return fanout_main(args)
    results: list[ScenarioResult] = []
    profile = None
    databases, skipped = reachable_databases(args)
    with (
        common.temp_dir("campaign") as scratch,
        Children() as children,
        common.ending_cleanly(
            "\ninterrupted; stopping the emulator and workers, dropping the databases",
            failures=(RuntimeError,),
            logs=scratch,
            log_pattern=WORKER_LOGS,
        ),
    ):
        redis_url = args.redis_url or ensure_embedded_redis(scratch / "redis")
        emulator_url = start_emulator(children, scratch)
        warm_up(emulator_url)
        for kind in databases:
            for size in args.sizes:
                with ScratchDatabase(kind, scratch, f"{kind}-{size}", args.postgres_url) as scratch_db:
                    db = Database(scratch_db.url)
                    try:
                        beneficiaries, seconds = seed(db, size)
                        print(f"{kind} {size}: seeded {beneficiaries} beneficiaries in {seconds:.1f} s", flush=True)
                        for scenario, latency in network_runs(args):
                            try:
                                result = run_scenario(
                                    db,
                                    kind,
                                    size,
                                    beneficiaries,
                                    scenario,
                                    args,
                                    children=children,
                                    scratch=scratch,
                                    redis_url=redis_url,
                                    emulator_url=emulator_url,
                                    latency=latency,
                                )
                            except RuntimeError as exc:
                                # One broken scenario (a worker that died) should not cost the others' figures.
                                skipped.append(f"{kind} {scenario[0]} {size} failed: {exc}")
                                print(f"  {skipped[-1]}", flush=True)
                                common.print_log_tails(scratch, WORKER_LOGS)
                                continue
                            results.append(result)
                            print(
                                f"  {result.scenario}: {result.recipients} recipients, fan-out "
                                f"{_seconds(result.fanout_seconds)} s, dispatch {_rate(result.dispatch_rate)} msg/s, "
                                f"SDK {result.baseline_rate:.0f} msg/s, peak PSS {result.peak_pss / MIB:.1f} MiB",
                                flush=True,
                            )
                    finally:
                        db.dispose()
        if args.profile and databases:
            print(f"profiling an in-process fan-out and drain ({databases[0]}, {args.profile_size})...", flush=True)
            configure_emulator(emulator_url, **network(args, args.latency[0]))
            profile = profile_campaign(databases[0], args, scratch, redis_url, emulator_url)
    if not results:
        print("no campaign ran to the end; nothing to report", file=sys.stderr)
        return 1
    ratios = memory_ratios(results)
    print_table(results, ratios, skipped)
    print_network_table(results, args)
    if profile:
        print("\n" + profile)
    print(f"results: {common.write_results('campaign', results_document(results, ratios, skipped, args, profile))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
