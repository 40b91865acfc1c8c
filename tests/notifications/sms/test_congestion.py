"""The adaptive window of provider calls: its arithmetic (pure), and the dispatcher's window against an emulator
that answers slowly and then refuses with 429 under load."""

from __future__ import annotations

import threading
import time

import pytest

from models.messages import MessagePriority, MessageStatus
from notifications.sms.congestion import (
    BASE_RTT_PERIOD_SECONDS,
    AimdWindow,
    CallSignal,
    SendGate,
)
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import next_phone
from tests.notifications.sms.test_dispatch import queue_texts, statuses

RTT = 0.15


class FakeClock:
    """Time that moves only when the test says: the window's arithmetic is checked call by call."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered_round_trip(window: AimdWindow, clock: FakeClock, seconds: float = RTT) -> None:
    """A window's worth of calls, each begun as another left a full window (the steady state), answered in
    `seconds`."""
    tickets = [window.begin(window.limit - 1) for _ in range(window.limit)]
    clock.now += seconds
    for ticket in tickets:
        window.end(ticket, CallSignal.ANSWERED, seconds)


def test_a_full_window_of_prompt_answers_grows_by_about_one_call_per_round_trip_up_to_the_ceiling():
    clock = FakeClock()
    window = AimdWindow(initial=4, ceiling=10, clock=clock)
    answered_round_trip(window, clock)
    assert 4.9 < window.window < 5.1
    answered_round_trip(window, clock)
    assert window.limit == 5 and 5.6 < window.window < 6.0
    for _ in range(20):
        answered_round_trip(window, clock)
    assert window.window == 10


def test_calls_held_back_by_the_send_rate_do_not_grow_the_window():
    clock = FakeClock()
    window = AimdWindow(initial=4, ceiling=10, clock=clock)
    for _ in range(50):
        ticket = window.begin(window.limit - 1)
        clock.now += RTT
        window.end(ticket, CallSignal.ANSWERED, RTT, rate_limited=True)
    assert window.window == 4


def test_answers_to_a_window_that_was_not_full_do_not_grow_it():
    clock = FakeClock()
    window = AimdWindow(initial=4, ceiling=10, clock=clock)
    for _ in range(50):  # one call at a time: the provider keeping up with one call says nothing about five
        ticket = window.begin(in_flight=0)
        clock.now += RTT
        window.end(ticket, CallSignal.ANSWERED, RTT)
    assert window.window == 4


def test_congestion_halves_the_window_once_per_round_trip_and_never_below_one_call():
    clock = FakeClock()
    window = AimdWindow(initial=16, ceiling=32, clock=clock)
    out = [window.begin(in_flight) for in_flight in range(16)]
    clock.now += RTT
    for ticket in out:  # a whole window of 429s from one overload
        window.end(ticket, CallSignal.CONGESTED)
    assert window.window == 8 and window.cuts == 1
    for expected in (4, 2, 1, 1):
        clock.now += RTT
        ticket = window.begin(in_flight=0)  # began after the last cut: its 429 is news
        window.end(ticket, CallSignal.CONGESTED)
        assert window.window == expected


def test_a_provider_that_slows_down_cuts_the_window_and_neutral_calls_change_nothing():
    clock = FakeClock()
    window = AimdWindow(initial=8, ceiling=32, clock=clock)
    for _ in range(5):
        answered_round_trip(window, clock, seconds=0.1)
    grown = window.window
    assert grown > 8
    ticket = window.begin(in_flight=0)
    window.end(ticket, CallSignal.NEUTRAL)  # credentials refused, or the call never went out
    assert window.window == grown
    for _ in range(20):
        answered_round_trip(window, clock, seconds=1.0)  # ten times slower: queueing somewhere
        if window.cuts:
            break
    assert window.cuts == 1 and window.window < grown


def test_a_provider_that_moved_further_away_becomes_the_new_normal():
    clock = FakeClock()
    window = AimdWindow(initial=4, ceiling=64, clock=clock)
    answered_round_trip(window, clock, seconds=0.01)
    clock.now += 2 * BASE_RTT_PERIOD_SECONDS
    for _ in range(200):
        answered_round_trip(window, clock, seconds=0.3)
    assert window.base_rtt == 0.3
    assert not window.slowed_down() and window.window == 64


def test_the_gate_holds_a_call_while_the_window_is_full():
    gate = SendGate("test-route", initial=2, ceiling=2)
    first, second = gate.enter(), gate.enter()
    entered = threading.Event()

    def third_call():
        ticket = gate.enter()
        entered.set()
        gate.leave(ticket, CallSignal.NEUTRAL)

    thread = threading.Thread(target=third_call)
    thread.start()
    assert not entered.wait(0.2)
    gate.leave(first, CallSignal.ANSWERED, RTT)
    assert entered.wait(2)
    thread.join()
    gate.leave(second, CallSignal.ANSWERED, RTT)
    assert gate.in_flight == 0


@pytest.fixture
def adaptive(settings, db, redis, emulator):
    sms_settings = settings.replace(
        at_api_base_url=emulator.url,
        at_api_key="test-key",
        at_timeout_seconds=5.0,
        sms_rate_per_second=100_000.0,
        sms_batch_size=1,
        sms_send_concurrency=2,
        sms_send_concurrency_max=32,
        sms_breaker_failures=1000,  # this test watches the window; the breaker has its own tests
    )
    made = Dispatcher(
        settings=sms_settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(sms_settings)
    )
    yield made
    made.close()


def test_the_window_grows_while_the_provider_keeps_up_and_shrinks_and_settles_when_it_answers_429(
    db, adaptive, emulator
):
    gate = adaptive.gates["africastalking"]
    emulator.state.configure(latency=0.05, jitter=0.01)
    queue_texts(db, {next_phone(): f"Payment notice {index}" for index in range(150)})
    adaptive.drain(MessagePriority.TRANSACTIONAL)
    grown = gate.window
    assert grown >= 6, f"the window stayed at {grown} while every call succeeded"

    emulator.state.reset()
    emulator.state.configure(max_in_flight=3)  # the provider now takes three calls at a time, and refuses the rest
    queue_texts(db, {next_phone(): f"Grant notice {index}" for index in range(300)})
    started = time.monotonic()
    adaptive.drain(MessagePriority.TRANSACTIONAL)
    assert time.monotonic() - started < 60
    assert gate.window < grown and gate.aimd.cuts >= 1
    codes = [request["http_status"] for request in emulator.state.snapshot()["requests"]]
    refused = codes.count(429)
    # Settled below the provider's limit: a few 429s each time the window probes past three, not a storm of retries.
    assert codes.count(201) == 300
    assert refused < 0.25 * len(codes), f"{refused} of {len(codes)} calls refused"
    assert statuses(db) == {MessageStatus.SUBMITTED: 450}
