"""The provider-wide circuit breaker on a real Redis, alone and inside the dispatcher against the emulator."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from config.settings import AFRICASTALKING_ROUTE
from models.messages import MessagePriority, MessageStatus, OutboundMessage
from notifications.sms.breaker import BreakerState, BreakerStatus, CircuitBreaker
from notifications.sms.dispatch import BATCHES_PER_THREAD, Dispatcher
from notifications.sms.metrics_server import METRICS_PATH, metrics_page
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.worker_http import WorkerEndpoints
from tests.factories import next_phone
from tests.notifications.sms.test_dispatch import queue_texts, sent_to, statuses

THRESHOLD = 3
COOLDOWN_SECONDS = 0.3
MESSAGES = 20


@pytest.fixture
def breaker(redis):
    return CircuitBreaker(redis, failures=THRESHOLD, cooldown_seconds=COOLDOWN_SECONDS, probe_timeout_seconds=1)


def test_it_opens_only_after_consecutive_failures(breaker):
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # an answered call breaks the run
    breaker.failed()
    breaker.failed()
    assert breaker.status().state == BreakerState.CLOSED
    assert breaker.permit().go
    breaker.failed()
    assert breaker.status().state == BreakerState.OPEN
    permit = breaker.permit()
    assert not permit.go and 0 < permit.wait <= COOLDOWN_SECONDS


def test_after_the_cool_down_one_caller_probes_and_its_answer_decides(breaker, redis):
    other_worker = CircuitBreaker(redis, failures=THRESHOLD, cooldown_seconds=COOLDOWN_SECONDS, probe_timeout_seconds=1)
    for _ in range(THRESHOLD):
        breaker.failed()
    time.sleep(COOLDOWN_SECONDS)
    assert breaker.status().state == BreakerState.HALF_OPEN
    assert breaker.permit().probe
    assert not other_worker.permit().go  # one probe at a time, across processes
    breaker.failed()  # the probe failed: another cool-down
    assert breaker.status().state == BreakerState.OPEN
    time.sleep(COOLDOWN_SECONDS)
    assert other_worker.permit().probe
    other_worker.succeeded()
    assert breaker.status().state == BreakerState.CLOSED
    assert breaker.permit().go and not breaker.permit().probe


@pytest.fixture
def dispatcher(settings, emulator, db, redis):
    sms_settings = settings.replace(
        at_api_base_url=emulator.url,
        at_api_key="test-key",
        at_timeout_seconds=1.0,
        sms_rate_per_second=1000.0,
        sms_batch_size=3,
        sms_send_concurrency=1,
        sms_send_concurrency_max=1,
        sms_retry_backoff_seconds=(30, 120),
        sms_breaker_failures=THRESHOLD,
        sms_breaker_cooldown_seconds=COOLDOWN_SECONDS,
    )
    made = Dispatcher(
        settings=sms_settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(sms_settings)
    )
    yield made
    made.close()


def test_an_outage_stops_the_calls_and_the_first_answered_probe_sends_the_backlog_at_once(db, dispatcher, emulator):
    phones = [next_phone() for _ in range(MESSAGES)]
    queue_texts(db, {phone: f"Payment notice {index}" for index, phone in enumerate(phones)})
    emulator.state.set_outcomes({"default": "http_500"})
    dispatcher.drain(MessagePriority.TRANSACTIONAL)
    failed_calls = len(emulator.state.snapshot()["requests"])
    # The rounds claimed before the breaker opened still go out; then it holds every call back.
    assert THRESHOLD <= failed_calls <= THRESHOLD + 2 * BATCHES_PER_THREAD < MESSAGES
    assert dispatcher.drain(MessagePriority.TRANSACTIONAL) == (0, True)
    assert len(emulator.state.snapshot()["requests"]) == failed_calls
    with db.session() as session:
        rows = session.execute(select(OutboundMessage)).scalars().all()
        assert {(row.status, row.attempts, row.next_attempt_at) for row in rows} == {(MessageStatus.QUEUED, 0, None)}

    emulator.state.set_outcomes({"default": "delivered"})
    started = time.monotonic()
    handled, more = dispatcher.drain(MessagePriority.TRANSACTIONAL, time_budget=5)
    assert (handled, more) == (MESSAGES, False)
    assert time.monotonic() - started < 2 * COOLDOWN_SECONDS + 1  # waited out the cool-down, not a backoff
    assert sorted(sent_to(emulator)) == sorted(phones)
    assert statuses(db) == {MessageStatus.SUBMITTED: MESSAGES}
    assert dispatcher.breakers[AFRICASTALKING_ROUTE].status().state == BreakerState.CLOSED


def test_the_answered_calls_of_a_round_reset_another_workers_failures_by_the_rounds_end(db, dispatcher, redis):
    # The dispatcher tells Redis of answered calls with its next round trip rather than one each: by the end of the
    # round they must have reached Redis, or another worker's failures would add up across them.
    other_worker = CircuitBreaker(redis, failures=THRESHOLD, cooldown_seconds=COOLDOWN_SECONDS, probe_timeout_seconds=1)
    for _ in range(THRESHOLD - 1):
        other_worker.failed()
    assert other_worker.status().failures == THRESHOLD - 1
    queue_texts(db, {next_phone(): f"Payment notice {index}" for index in range(MESSAGES)})
    assert dispatcher.send_round(MessagePriority.TRANSACTIONAL) > 0
    assert other_worker.status().failures == 0
    other_worker.failed()  # one failure after the answered calls: far from the threshold
    assert other_worker.status() == BreakerStatus(BreakerState.CLOSED, failures=1, retry_in=0.0)


def test_the_worker_metrics_page_shows_the_calls_and_the_breaker_changes(dispatcher, db, emulator):
    endpoints = WorkerEndpoints({METRICS_PATH: metrics_page}, "127.0.0.1", 0).start()
    try:
        queue_texts(db, {next_phone(): "Hello"})
        emulator.state.set_outcomes({"default": "http_500"})
        dispatcher.drain(MessagePriority.TRANSACTIONAL)
        page = requests.get(f"http://127.0.0.1:{endpoints.port}{METRICS_PATH}", timeout=5).text
    finally:
        endpoints.stop()
    assert page.count("gateway_sms_provider_calls_total") >= 1
    assert 'gateway_sms_provider_calls_total{outcome="unavailable",route="africastalking"}' in page
    assert 'gateway_sms_breaker_transitions_total{route="africastalking",state="open"}' in page
    assert 'gateway_sms_send_window{route="africastalking"} 1.0' in page  # the window, cut to its floor
