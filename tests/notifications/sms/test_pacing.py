"""The send rate holds in every second, across workers: the pacer on real Redis, and two real worker processes
counted at the provider's end."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from models.messages import MessageKind, MessagePriority
from models.people import get_or_create_contact
from notifications.sms.dispatch import Dispatcher
from notifications.sms.outbox import owe_text
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.queues import PAUSED_KEY, kick
from notifications.sms.ratelimit import Pacer
from tests.factories import next_phone
from tests.notifications.sms.test_dispatch import queue_texts
from tests.notifications.sms.test_worker_processes import accepted_count, start_worker, stop, wait_until, worker_env

RATE = 10
# Release times are read on this process's clock, a few milliseconds from Redis's own.
CLOCK_NOISE_SECONDS = 0.005
# A provider arrival lags its slot by the worker thread's wake-up and the HTTP request: on this loaded two-core
# machine by up to about 200 ms (measured: 40-150 ms while the test suite runs). A one-second window of arrivals then
# holds the messages of up to 1.2 s of slots: at most 12 at 10 a second, one call a message. Anything beyond that is a
# burst, which is what is tested: spending a round's reserved tokens at once put both workers' rounds into one second.
ARRIVAL_TOLERANCE = 2


def busiest_second(events: list[tuple[float, int]], noise: float = 0.0) -> int:
    """The most messages in any one-second window [t, t + 1), over (time, messages) events."""
    events = sorted(events)
    worst = 0
    for index, (start, _) in enumerate(events):
        worst = max(worst, sum(count for at, count in events[index:] if at < start + 1 - noise))
    return worst


def test_the_pacer_spreads_calls_over_the_second_and_no_second_holds_more_than_the_rate(redis):
    pacers = [Pacer(redis, "test", PAUSED_KEY, RATE) for _ in range(2)]  # two workers' pacers
    counts = [1, 1, 1, 5, 1, 10, 2, 2, 1, 3, 1, 1, 7, 1, 1, 1, 4, 1, 1, 1]
    releases = []
    for index, count in enumerate(counts):
        releases.append((time.time() + pacers[index % 2].release(count), count))
    assert busiest_second(releases, CLOCK_NOISE_SECONDS) <= RATE
    total = sum(counts)
    span = max(at for at, _ in releases) - min(at for at, _ in releases)
    assert span >= (total - RATE) / RATE - CLOCK_NOISE_SECONDS  # the average holds too
    ones = sorted(at for at, count in releases if count == 1)
    assert min(later - earlier for earlier, later in zip(ones, ones[1:], strict=False)) >= 1 / RATE - 0.01


def test_the_pacer_releases_nothing_while_sending_is_paused(redis):
    pacer = Pacer(redis, "test", PAUSED_KEY, RATE)
    redis.set(PAUSED_KEY, "sms_no_credit")
    assert pacer.release(1) == -1
    redis.delete(PAUSED_KEY)
    assert pacer.release(1) == 0


def test_a_call_carries_at_most_one_second_of_the_rate(db, redis, settings, emulator):
    slow = settings.replace(
        at_api_base_url=emulator.url, at_api_key="test-key", sms_rate_per_second=3.0, sms_batch_size=100
    )
    dispatcher = Dispatcher(settings=slow, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(slow))
    try:
        queue_texts(db, {next_phone(): "Payments start on Monday." for _ in range(7)})
        assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (7, False)
    finally:
        dispatcher.close()
    requests = emulator.state.snapshot()["requests"]
    assert sorted(len(request["form"]["to"].split(",")) for request in requests) == [1, 3, 3]
    times = sorted(request["at"] for request in requests)
    # Each call of three is one second of the rate: the next call leaves a second later (less a slow wake-up).
    assert min(later - earlier for earlier, later in zip(times, times[1:], strict=False)) > 0.8


@pytest.mark.slow
def test_two_workers_never_send_more_than_the_rate_in_any_second(db, redis, redis_url, settings, emulator):
    phones = [next_phone() for _ in range(60)]
    with db.session() as session:
        for index, phone in enumerate(phones):
            # Personal notices, one call each: calls of mixed sizes are the pacer test's, above, on exact times.
            owe_text(session, get_or_create_contact(session, phone), MessageKind.STAFF, f"Personal notice {index}")
    # No worker dies here: the claim and outcome timeouts are the defaults, not the kill tests' short ones.
    env = worker_env(settings, emulator.url, redis_url) | {
        "SMS_RATE_PER_SECOND": str(RATE),
        "SMS_BATCH_SIZE": "20",
        "SMS_CLAIM_TIMEOUT_SECONDS": "120",
        "SMS_UNKNOWN_OUTCOME_SECONDS": "1800",
    }
    workers = [start_worker(env) for _ in range(2)]
    # The rate's own time, plus start-up, plus a loaded machine's slack.
    finish_by = time.monotonic() + len(phones) / RATE + 40
    try:
        kick(redis, "transactional")
        while not wait_until(lambda: accepted_count(db) == len(phones), seconds=1):
            kick(redis, "transactional")  # as every commit would: lets the second worker take a job too
            assert all(worker.poll() is None for worker in workers)
            assert time.monotonic() < finish_by, f"{accepted_count(db)} of {len(phones)} accepted"
    finally:
        for worker in workers:
            stop(worker)
    requests = [request for request in emulator.state.snapshot()["requests"] if request["http_status"] == 201]
    arrivals = [(request["at"], len(request["form"]["to"].split(","))) for request in requests]
    assert Counter(message["phone"] for message in emulator.state.snapshot()["messages"]) == Counter(phones)
    assert busiest_second(arrivals) <= RATE + ARRIVAL_TOLERANCE, sorted(arrivals)
    span = max(at for at, _ in arrivals) - min(at for at, _ in arrivals)
    assert span >= (len(phones) - RATE) / RATE - 0.5
