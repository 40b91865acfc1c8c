"""A provider outage and its end: every held transactional SMS must reach the provider within 15 s of recovery.

    .venv/bin/python bench/outage.py            # the two-minute outage of the issue (about three minutes in all)
    .venv/bin/python bench/outage.py --quick    # a 20-second outage

Real worker processes (`flask --app wsgi worker`, production breaker and backoff settings) send to the provider
emulator in its own process. The emulator answers every call with HTTP 500 (its fault switch) for the outage while
grant notices keep being owed at a steady rate; then it answers normally again. The script reports how long after the
recovery the last held message reached the provider, how many calls the outage cost, and whether anything was lost
or doubled. Without the circuit breaker each held message waited out its own backoff (30 s, 120 s, 300 s...).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

import common
from sms import (
    Children,
    FreshDatabase,
    accepted_count,
    check_emulator,
    start_emulator,
    start_workers,
    status_counts,
    worker_env,
)

sys.path.insert(0, str(common.PROJECT_ROOT))
# This script migrates its scratch database in-process; a process without APP_ENV is production, which wants real keys.
os.environ.setdefault("APP_ENV", "test")

import requests  # noqa: E402

from config import Settings  # noqa: E402
from config.redis import connect, ensure_embedded_redis  # noqa: E402
from models.db import Database  # noqa: E402
from models.messages import MessageKind  # noqa: E402
from models.people import get_or_create_contact  # noqa: E402
from notifications.sms.outbox import owe_text  # noqa: E402
from notifications.sms.queues import kick  # noqa: E402

DEFAULT_OUTAGE_SECONDS = 120.0
QUICK_OUTAGE_SECONDS = 20.0
# The goal: the backlog has reached the provider this soon after the provider recovers.
RECOVERY_GOAL_SECONDS = 15.0
DEFAULT_PER_SECOND = 2.0  # grant notices owed per second during the outage
DEFAULT_RATE_PER_SECOND = 50.0  # SMS_RATE_PER_SECOND: the backlog itself must fit in the goal at this rate
DEFAULT_WORKERS = 2
BATCH_SIZE = Settings().sms_batch_size
DRAIN_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.1
PHONE_PREFIX = "+2665"


def set_outcome(emulator_url: str, outcome: str) -> None:
    requests.post(f"{emulator_url}/_emulator/outcomes", json={"default": outcome}, timeout=10).raise_for_status()


def owe(db: Database, connection, number: int) -> tuple[str, str]:
    phone = f"{PHONE_PREFIX}{number:07d}"
    text = f"Your grant payment {number} is scheduled."
    with db.session() as session:
        owe_text(session, get_or_create_contact(session, phone), MessageKind.GRANT_NOTICE, text)
    kick(connection, "transactional")
    return phone, text


def run(args: argparse.Namespace, scratch, children: Children) -> dict:
    redis_url = args.redis_url or ensure_embedded_redis(scratch / "redis")
    connection = connect(redis_url)
    connection.flushdb()
    emulator_url = start_emulator(children, scratch)
    with FreshDatabase(args.database_url, scratch, "outage", benchmark="outage") as fresh:
        db = Database(fresh.url)
        env = worker_env(fresh.url, redis_url, emulator_url, BATCH_SIZE)
        # Production's backoff and breaker; a sweep as often as production's, so it is not what saves the day.
        env.update(SMS_RATE_PER_SECOND=str(args.rate), SWEEP_INTERVAL_SECONDS=str(Settings().sweep_interval_seconds))
        start_workers(children, args.workers, env, connection, scratch)
        set_outcome(emulator_url, "http_500")
        owed: set[tuple[str, str]] = set()
        started = time.monotonic()
        number = 0
        print(f"provider down for {args.outage:g} s, {args.per_second:g} notices owed per second...", flush=True)
        while time.monotonic() - started < args.outage:
            owed.add(owe(db, connection, number))
            number += 1
            time.sleep(1 / args.per_second)
        failed_calls = len(requests.get(f"{emulator_url}/_emulator/messages", timeout=30).json()["requests"])
        set_outcome(emulator_url, "delivered")
        recovered = datetime.now(UTC)
        recovered_clock = time.monotonic()
        print(f"provider back; {len(owed)} notices held, {failed_calls} calls refused during the outage", flush=True)
        while accepted_count(db) < len(owed) and time.monotonic() - recovered_clock < DRAIN_TIMEOUT_SECONDS:
            time.sleep(POLL_SECONDS)
        drained = time.monotonic() - recovered_clock
        recorded = requests.get(f"{emulator_url}/_emulator/messages", timeout=30).json()["messages"]
        arrivals = [datetime.fromisoformat(message["time"]) for message in recorded]
        last = max((arrival - recovered).total_seconds() for arrival in arrivals) if arrivals else None
        check = check_emulator(emulator_url, owed)
        statuses = status_counts(db)
        db.dispose()
    return {
        "outage_seconds": args.outage,
        "owed": len(owed),
        "failed_calls_during_outage": failed_calls,
        "last_arrival_after_recovery_seconds": last,
        "drained_seconds": drained,
        "statuses": statuses,
        **check,
        "goal_met": bool(check["exact"] and last is not None and last <= RECOVERY_GOAL_SECONDS),
    }


def print_result(result: dict) -> None:
    verdict = "PASS" if result["goal_met"] else "MISS"
    last = result["last_arrival_after_recovery_seconds"]
    print()
    print(f"outage            {result['outage_seconds']:g} s, {result['failed_calls_during_outage']} calls refused")
    print(f"held notices      {result['owed']}")
    print(f"reached provider  {result['messages']}  missing {result['missing']}  doubled {result['duplicates']}")
    print(f"last one arrived  {last:.2f} s after recovery (goal <= {RECOVERY_GOAL_SECONDS:g} s) {verdict}")
    print(f"statuses          {result['statuses']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/outage.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outage", type=float, help=f"seconds the provider is down (default {DEFAULT_OUTAGE_SECONDS:g})"
    )
    parser.add_argument("--per-second", type=float, default=DEFAULT_PER_SECOND, help="notices owed per second")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_SECOND, help="SMS_RATE_PER_SECOND")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="worker processes")
    parser.add_argument("--database-url", help="default: a temporary SQLite file; or a PostgreSQL server URL")
    parser.add_argument("--redis-url", help="default: an embedded Redis in a temporary directory")
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_OUTAGE_SECONDS:g}-second outage")
    args = parser.parse_args(argv)
    if args.outage is None:
        args.outage = QUICK_OUTAGE_SECONDS if args.quick else DEFAULT_OUTAGE_SECONDS
    if args.outage <= 0 or args.per_second <= 0 or args.workers < 1:
        parser.error("--outage, --per-second and --workers must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        common.temp_dir("outage") as scratch,
        Children() as children,
        common.ending_cleanly(
            "\ninterrupted; stopping the emulator and workers", failures=(RuntimeError,), logs=scratch
        ),
    ):
        result = run(args, scratch, children)
    print_result(result)
    print(f"results: {common.write_results('outage', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
