"""Growth over years: do the console's and the dispatcher's queries stay flat from 1 to 10 million messages?

Outbound messages, delivery reports and USSD session records grow with every campaign. Instead of partitioning them
by month, the gateway relies on indexes that make each query read what it returns, not the table (migration "fan-out
and growth indexes"). This script checks that on PostgreSQL: it fills a fresh database with a programme's history
at a steady MESSAGES_PER_MONTH (one INSERT … SELECT generate_series per table, oldest first), times every query at
1,000,000 messages, fills on to 10,000,000 (ten times the months), times them again, and reports each query's
median and 95th percentile at both sizes and their ratio (goal: at most FLAT_GOAL). The queries are the gateway's
own functions where they are read-only (`search_messages`, `sms_breakdown`, `campaign_progress`) and the statements
of the dispatcher's claim, the sweep and delivery-report handling, the latter run inside a transaction that is rolled
back. Then it times the retention sweep emptying the oldest month of all three tables (`apply_retention`).

    .venv/bin/python bench/growth.py                      # 1M and 10M messages (the fill takes minutes)
    .venv/bin/python bench/growth.py --quick              # 20,000 and 200,000: a smoke run in under a minute
    .venv/bin/python bench/growth.py --sizes 1000000,3000000

The database (`bench_fanout_growth_…` on --postgres-url) is dropped at the end. Results also go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import common

sys.path.insert(0, str(common.PROJECT_ROOT))

import sqlalchemy as sa  # noqa: E402
from campaign import DEFAULT_POSTGRES_URL, postgres_reachable, seed_audience  # noqa: E402

from config import load_settings  # noqa: E402
from models.campaigns import Campaign, CampaignStatus  # noqa: E402
from models.clock import lesotho_time  # noqa: E402
from models.db import Database  # noqa: E402
from models.messages import MessagePriority, MessageStatus, OutboundMessage  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.reports import Filters, sms_breakdown  # noqa: E402
from models.search import MessageFilters, search_messages  # noqa: E402
from models.staff import Role, StaffUser  # noqa: E402
from models.ussd import UssdSessionRecord  # noqa: E402
from notifications.campaigns.lifecycle import campaign_progress  # noqa: E402
from notifications.casework.retention import apply_retention  # noqa: E402
from notifications.sms.delivery import record_delivery_report  # noqa: E402

DEFAULT_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (100_000, 300_000)  # at least a month each, so that "last month" is a whole one
# The word is "flat": a query may touch at most this many times the pages at the largest size as at the
# smallest. Judged on pages, not milliseconds: on a shared machine a few-millisecond query's time is the neighbours'.
FLAT_GOAL = 1.5
# ... give or take this many pages: a B-tree one level deeper costs a page more per descent, which doubles a lookup
# that touches four.
PAGES_SLACK = 16
# A programme's steady pace: a national campaign a month and its notices; 10M messages are about ten years.
MESSAGES_PER_MONTH = 83_000
MONTH = timedelta(days=30)
PEOPLE = 100_000  # beneficiaries the messages go to
CAMPAIGN_SIZE = 100_000  # messages per campaign in the fill
# Of every 100 messages, by final status; the rest (of the newest campaign) are still queued: see QUEUED_TAIL.
STATUS_SHARES = ((90, MessageStatus.DELIVERED), (95, MessageStatus.FAILED), (98, MessageStatus.REJECTED))
QUEUED_TAIL = 2_000  # the newest messages, waiting for the dispatcher
# Delivery reports kept for unknown ids and USSD session records, per message.
REPORT_EVERY = 100
SESSION_EVERY = 4
FILL_STEP = 1_000_000  # rows per INSERT … SELECT, so that progress shows and no transaction is huge
# Timing: runs per query after WARM_UP_RUNS unmeasured ones.
WARM_UP_RUNS = 3
RUNS = 25
CLAIM_ROUND = 1600  # rows a dispatcher round reads at most (SMS_SEND_CONCURRENCY 4 × 4 batches × 100)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
BODY = "Lumela, thuso ea hau e ntse e sebetsoa. Letsetsa *123# ho bona boemo ba eona. Araba STOP ho emisa."


# -- the fill ----------------------------------------------------------------------------------------------------------


def moment_sql(g: str) -> str:
    """The creation time of row `g` at the steady pace, as SQL."""
    seconds = MONTH.total_seconds() / MESSAGES_PER_MONTH
    return f"(TIMESTAMPTZ '{EPOCH.isoformat()}' + ({g}) * INTERVAL '{seconds:.6f} seconds')"


def moment(row: int) -> datetime:
    return EPOCH + row * (MONTH / MESSAGES_PER_MONTH)


def fill(db: Database, low: int, high: int) -> float:
    """Messages low+1..high (oldest first), their campaigns, kept reports and USSD sessions; the seconds."""
    started = time.perf_counter()
    status = "CASE " + " ".join(f"WHEN g % 100 < {share} THEN '{name}'" for share, name in STATUS_SHARES)
    status += f" ELSE '{MessageStatus.EXPIRED}' END"
    at = moment_sql("g")
    for lo in range(low, high, FILL_STEP):
        hi = min(lo + FILL_STEP, high)
        series = f"generate_series({lo + 1}, {hi}) AS g"
        with db.engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL statement_timeout = 0"))
            connection.execute(
                sa.text(
                    "INSERT INTO campaigns (id, name, kind, text_en, text_st, audience_json, status, created_by, "
                    "fanout_cursor, fanout_done, excluded_opted_out, created_at, updated_at) "
                    f"SELECT c, 'growth ' || c, 'campaign', :body, :body, '{{}}', '{CampaignStatus.COMPLETED}', "
                    f"'bench', {PEOPLE}, true, 0, {moment_sql('c * ' + str(CAMPAIGN_SIZE))}, now() "
                    f"FROM generate_series({lo // CAMPAIGN_SIZE + 1}, {(hi - 1) // CAMPAIGN_SIZE + 1}) AS c "
                    "ON CONFLICT (id) DO NOTHING"
                ),
                {"body": BODY},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO outbound_messages (id, phone, contact_id, kind, priority, language, body, status, "
                    "provider_message_id, parts, cost, attempts, campaign_id, route, submitted_at, final_at, "
                    "created_at, updated_at) "
                    f"SELECT g, '+266' || (50000000 + 1 + g % {PEOPLE}), 1 + g % {PEOPLE}, 'campaign', "
                    f"'{MessagePriority.BULK}', 'st', :body, {status}, 'ATXid_' || g, 1, 'KES 0.8000', 1, "
                    f"1 + (g - 1) / {CAMPAIGN_SIZE}, 'africastalking', {at}, {at} + INTERVAL '2 minutes', {at}, "
                    f"{at} FROM {series}"
                ),
                {"body": BODY},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO delivery_reports (provider_message_id, phone, status, received_at) "
                    f"SELECT 'ATXid_unknown_' || g, '+266' || (50000000 + 1 + g % {PEOPLE}), 'Success', {at} "
                    f"FROM {series} WHERE g % {REPORT_EVERY} = 0"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO ussd_sessions (session_id, phone, service_code, status, hops_count, duration_ms, "
                    f"recorded_at) SELECT 'ATUid_' || g, '+266' || (50000000 + 1 + g % {PEOPLE}), '*123#', "
                    f"'Success', 4, 30000, {at} FROM {series} WHERE g % {SESSION_EVERY} = 0"
                )
            )
        print(f"  filled messages to {hi:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    with db.engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL statement_timeout = 0"))
        # The newest campaign is still going out: its last QUEUED_TAIL messages wait, as they would.
        newest = (high - 1) // CAMPAIGN_SIZE + 1
        connection.execute(
            sa.text(f"UPDATE campaigns SET status = '{CampaignStatus.SENDING}', fanout_done = true WHERE id = :newest"),
            {"newest": newest},
        )
        connection.execute(
            sa.text(
                f"UPDATE outbound_messages SET status = '{MessageStatus.QUEUED}', provider_message_id = NULL, "
                "submitted_at = NULL, final_at = NULL WHERE id > :tail"
            ),
            {"tail": high - QUEUED_TAIL},
        )
        for table in ("outbound_messages", "delivery_reports", "ussd_sessions", "campaigns"):
            connection.execute(sa.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    common.admin_execute(db.url, "VACUUM ANALYZE")
    return time.perf_counter() - started


def settle_previous_tail(db: Database, previous: int) -> None:
    """The tail left queued at the smaller size has since gone out, and its campaign is complete."""
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                f"UPDATE outbound_messages SET status = '{MessageStatus.DELIVERED}', provider_message_id = "
                "'ATXid_' || id, submitted_at = created_at, final_at = created_at + INTERVAL '2 minutes' "
                "WHERE id > :tail AND id <= :previous"
            ),
            {"tail": previous - QUEUED_TAIL, "previous": previous},
        )
        connection.execute(sa.text(f"UPDATE campaigns SET status = '{CampaignStatus.COMPLETED}'"))


# -- the queries -------------------------------------------------------------------------------------------------------


def queries(db: Database, size: int) -> dict[str, Callable[[], object]]:
    """Each query as the gateway runs it, against a table of `size` messages."""
    now = moment(size)
    newest_campaign = (size - 1) // CAMPAIGN_SIZE + 1
    admin = StaffUser(email="admin@bench", password_hash="-", role=Role.ADMIN, districts="")
    officer = StaffUser(email="officer@bench", password_hash="-", role=Role.OFFICER, districts="Mokhotlong")
    contact = 1 + (size - 10) % PEOPLE
    phone = f"+266{50_000_000 + contact}"
    with db.session() as session:
        reference = session.execute(
            sa.text("SELECT reference FROM beneficiaries WHERE contact_id = :c"), {"c": contact}
        ).scalar_one()
    month = lesotho_time(now - MONTH).date()
    recent_id = f"ATXid_{size - QUEUED_TAIL - 5}"
    old_id = f"ATXid_{size // 2}"

    def read(function):
        def run():
            with db.session() as session:
                return function(session)

        return run

    def rolled_back(function):
        def run():
            session = db.sessionmaker()
            try:
                return function(session)
            finally:
                session.rollback()
                session.close()

        return run

    due = sa.and_(
        OutboundMessage.status == MessageStatus.QUEUED,
        OutboundMessage.priority == MessagePriority.BULK,
        sa.or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now),
        sa.or_(
            OutboundMessage.campaign_id.is_(None),
            OutboundMessage.campaign_id.in_(sa.select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)),
        ),
    )

    def claim(session):
        rows = session.execute(
            sa.select(OutboundMessage.id, OutboundMessage.phone, OutboundMessage.body, OutboundMessage.route)
            .where(due)
            .order_by(OutboundMessage.id)
            .limit(CLAIM_ROUND)
        ).all()
        ids = [row.id for row in rows]
        return session.execute(
            sa.update(OutboundMessage)
            .where(OutboundMessage.id.in_(ids), OutboundMessage.status == MessageStatus.QUEUED)
            .values(status=MessageStatus.SUBMITTING, claim_token="bench", claimed_at=now)
            .returning(OutboundMessage.id)
        ).all()

    def stuck(session):
        return session.execute(
            sa.select(OutboundMessage).where(
                OutboundMessage.status == MessageStatus.SUBMITTING,
                OutboundMessage.claimed_at < now - timedelta(minutes=5),
            )
        ).all()

    def month_filters() -> Filters:
        first = month.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return Filters(start=first, end=last)

    return {
        "dispatcher: claim a round (read due + UPDATE … RETURNING)": rolled_back(claim),
        "sweep: messages stuck in submitting": read(stuck),
        "delivery report for a recent id": rolled_back(
            lambda s: record_delivery_report(s, recent_id, "Success", phone, None)
        ),
        "delivery report for an old id": rolled_back(
            lambda s: record_delivery_report(s, old_id, "Success", phone, None)
        ),
        "delivery report for an unknown id (kept)": rolled_back(
            lambda s: record_delivery_report(s, "ATXid_nobody", "Success", phone, None)
        ),
        "console: messages, first page": read(lambda s: search_messages(s, admin, MessageFilters())),
        "console: messages, status failed": read(
            lambda s: search_messages(s, admin, MessageFilters(status=MessageStatus.FAILED))
        ),
        "console: messages, status queued": read(
            lambda s: search_messages(s, admin, MessageFilters(status=MessageStatus.QUEUED))
        ),
        "console: messages, by phone": read(lambda s: search_messages(s, admin, MessageFilters(phone=phone))),
        "console: messages, by reference": read(
            lambda s: search_messages(s, admin, MessageFilters(reference=reference))
        ),
        "console: messages, officer of one district": read(lambda s: search_messages(s, officer, MessageFilters())),
        "console: campaign progress (newest)": read(lambda s: campaign_progress(s, s.get(Campaign, newest_campaign))),
        "reports: SMS by month (last month)": read(lambda s: sms_breakdown(s, month_filters())),
        "USSD: session end report lookup": read(
            lambda s: s.execute(
                sa.select(UssdSessionRecord).where(UssdSessionRecord.session_id == f"ATUid_{size - 4 * SESSION_EVERY}")
            ).all()
        ),
    }


@dataclass
class Timing:
    query: str
    size: int
    median_ms: float
    p95_ms: float
    pages: int  # 8 KiB buffers the query's statements touched (EXPLAIN ANALYZE BUFFERS): the noise-free measure


def pages_touched(db: Database, run: Callable[[], object]) -> int:
    """Run the query once, capturing its statements, then replay each under `EXPLAIN (ANALYZE, BUFFERS)` in a
    transaction that is rolled back, and add up the shared buffers they hit or read.

    Milliseconds on a shared machine move with the neighbours; the pages a plan touches do not. A query is flat
    when it touches about as many pages at 10 million messages as at 1 million.
    """
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        statements.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    total = 0
    with db.engine.connect() as connection:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                continue
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters or None
            ).scalar()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            total += plan[0]["Plan"].get("Shared Hit Blocks", 0) + plan[0]["Plan"].get("Shared Read Blocks", 0)
        connection.rollback()
    return total


def time_queries(db: Database, size: int) -> list[Timing]:
    timings = []
    for name, run in queries(db, size).items():
        for _ in range(WARM_UP_RUNS):
            run()
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        pages = pages_touched(db, run)
        timing = Timing(name, size, statistics.median(samples), samples[int(len(samples) * 0.95) - 1], pages)
        timings.append(timing)
        print(
            f"  {name:<58} median {timing.median_ms:8.2f} ms  p95 {timing.p95_ms:8.2f} ms  {pages:>7} pages",
            flush=True,
        )
    return timings


@dataclass
class RetentionRun:
    size: int
    seconds: float
    counts: dict[str, int]


def time_retention(db: Database, size: int, month: int) -> RetentionRun:
    """The sweep empties month number `month` (0: the first) of sessions and reports, and clears its message bodies;
    the months before it are already empty."""
    now = moment(size)
    days = (now - EPOCH - (month + 1) * MONTH).days  # everything older than that month's end
    settings = load_settings(
        {},
        app_env="test",
        retention_ussd_session_days=days,
        retention_delivery_report_days=days,
        retention_sms_body_days=days,
    )
    started = time.perf_counter()
    counts = apply_retention(db, settings, now)
    seconds = time.perf_counter() - started
    print(f"  retention of month {month + 1}: {seconds:.1f} s, {counts}", flush=True)
    return RetentionRun(size, seconds, {name: count for name, count in counts.items() if count})


# -- the run -----------------------------------------------------------------------------------------------------------


def print_table(timings: list[Timing], sizes: list[int], retention: list[RetentionRun]) -> list[dict]:
    small, large = sizes[0], sizes[-1]
    by = {(t.query, t.size): t for t in timings}
    names = list(dict.fromkeys(t.query for t in timings))
    rows = []
    print()
    print(
        f"Per query at {small:,} and {large:,} messages: median (p95) ms, their median ratio, pages touched, their "
        f"ratio; goal: pages <= {FLAT_GOAL} x + {PAGES_SLACK}"
    )
    for name in names:
        a, b = by.get((name, small)), by.get((name, large))
        if not a or not b:
            continue
        ratio = b.median_ms / a.median_ms if a.median_ms else float("inf")
        pages_ratio = b.pages / a.pages if a.pages else float("inf")
        verdict = "PASS" if b.pages <= a.pages * FLAT_GOAL + PAGES_SLACK else "MISS"
        rows.append(
            {
                "query": name,
                "small": asdict(a),
                "large": asdict(b),
                "median_ratio": ratio,
                "pages_ratio": pages_ratio,
                "verdict": verdict,
            }
        )
        print(
            f"{name:<58} {a.median_ms:7.2f} ({a.p95_ms:7.2f})  {b.median_ms:7.2f} ({b.p95_ms:7.2f})  {ratio:5.2f}  "
            f"{a.pages:>7} {b.pages:>7} {pages_ratio:5.2f} {verdict}"
        )
    for run in retention:
        print(f"retention, the oldest month left at {run.size:,} messages: {run.seconds:.1f} s for {run.counts}")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/growth.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="messages, comma-separated, ascending (default 1000000,10000000)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {','.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.sizes.split(",")] if args.sizes else None
    args.sizes = sorted(sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    if len(args.sizes) < 2 or args.sizes[0] < QUEUED_TAIL * 2:
        parser.error(f"two sizes or more, the smallest at least {QUEUED_TAIL * 2}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    why = postgres_reachable(args.postgres_url)
    if why:
        print(f"PostgreSQL unreachable at {args.postgres_url}: {why}", file=sys.stderr)
        return 1
    scratch = common.ScratchPostgres(args.postgres_url, "fanout_growth")
    timings: list[Timing] = []
    retention: list[RetentionRun] = []
    fills: dict[int, float] = {}
    with common.ending_cleanly("\ninterrupted; dropping the database"):
        scratch.create()
        db = Database(scratch.url)
        try:
            upgrade(scratch.url)
            seed_audience(db, "postgresql", PEOPLE)
            filled = 0
            for size in args.sizes:
                if filled:
                    settle_previous_tail(db, filled)
                print(f"filling to {size:,} messages", flush=True)
                fills[size] = fill(db, filled, size)
                filled = size
                print(f"{size:,} messages (~{size / MESSAGES_PER_MONTH / 12:.1f} years): timing", flush=True)
                timings += time_queries(db, size)
                retention.append(time_retention(db, size, len(retention)))
            with db.session() as session:
                sizes_mb = {
                    table: session.execute(sa.text(f"SELECT pg_total_relation_size('{table}')")).scalar_one() / 2**20
                    for table in ("outbound_messages", "delivery_reports", "ussd_sessions")
                }
        finally:
            db.dispose()
            scratch.drop()
    rows = print_table(timings, args.sizes, retention)
    print(
        f"table sizes at {args.sizes[-1]:,} (MiB, with indexes): "
        + ", ".join(f"{t} {v:.0f}" for t, v in sizes_mb.items())
    )
    document = {
        "benchmark": "growth",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine_description(),
        "sizes": args.sizes,
        "messages_per_month": MESSAGES_PER_MONTH,
        "fill_seconds": fills,
        "flat_goal": FLAT_GOAL,
        "queries": rows,
        "retention": [asdict(run) for run in retention],
        "table_mib": sizes_mb,
        "today": date.today().isoformat(),
    }
    print(f"results: {common.write_results('growth', document)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
