"""A provider outage with a real worker process: the backlog leaves within seconds of recovery, once each.

The emulator answers every call with HTTP 500 for a while (its fault switch), grant-style notices keep being owed
meanwhile, then it recovers. With the per-message backoff alone (30 s, then 120 s...) the messages held by the outage
would leak out over minutes; the provider-wide circuit breaker lets them all go at once. bench/outage.py runs the
two-minute version of this.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.messages import ACCEPTED_MESSAGE_STATUSES, MessageKind, OutboundMessage
from models.people import get_or_create_contact
from notifications.sms.outbox import owe_text
from notifications.sms.queues import kick
from tests.factories import next_phone
from tests.notifications.sms.test_worker_processes import accepted_count, start_worker, stop, wait_until, worker_env

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 10
# What the issue asks: every held transactional SMS reaches the provider within this long of the recovery.
RECOVERY_BOUND_SECONDS = 15
MESSAGES_BEFORE = 10
MESSAGES_DURING = 10


def owe(db, redis, count: int) -> list[str]:
    phones = [next_phone() for _ in range(count)]
    with db.session() as session:
        for phone in phones:
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Notice for {phone[-4:]}")
    kick(redis, "transactional")
    return phones


def test_after_a_provider_outage_every_held_sms_goes_out_within_seconds_once(db, redis, redis_url, settings, emulator):
    env = worker_env(settings, emulator.url, redis_url)
    # The production backoff, so that a message held by the outage would wait at least 30 s without the breaker.
    env.update(SMS_RETRY_BACKOFF_SECONDS="30,120,300,600,1800", SMS_BREAKER_FAILURES="3")
    env.update(SMS_BREAKER_COOLDOWN_SECONDS="1", SWEEP_INTERVAL_SECONDS="5")
    emulator.state.set_outcomes({"default": "http_500"})
    worker = start_worker(env)
    try:
        phones = owe(db, redis, MESSAGES_BEFORE)
        for _ in range(MESSAGES_DURING):
            time.sleep(OUTAGE_SECONDS / MESSAGES_DURING)
            phones += owe(db, redis, 1)
        failed_calls = len(emulator.state.snapshot()["requests"])
        emulator.state.set_outcomes({"default": "delivered"})
        recovered = datetime.now(UTC)
        assert wait_until(lambda: accepted_count(db) == len(phones), seconds=RECOVERY_BOUND_SECONDS + 10)
    finally:
        stop(worker)
    messages = emulator.state.snapshot()["messages"]
    assert Counter(message["phone"] for message in messages) == Counter(phones)  # nothing lost, nothing doubled
    latest = max(datetime.fromisoformat(message["time"]) for message in messages)
    assert (latest - recovered).total_seconds() < RECOVERY_BOUND_SECONDS
    # The breaker held the calls back: a probe a second or so, not a call per message per round.
    assert failed_calls < 3 + 2 * OUTAGE_SECONDS
    with db.session() as session:
        rows = session.execute(select(OutboundMessage.status, OutboundMessage.attempts)).all()
    assert {status for status, _ in rows} <= ACCEPTED_MESSAGE_STATUSES
    assert {attempts for _, attempts in rows} == {1}  # the outage spent none of a message's tries
