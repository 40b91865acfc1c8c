"""How many provider calls a worker keeps in flight on each route: a window that finds its own size, as TCP's does.

Why: the right number depends on the network and on the provider's mood, neither of which an operator can see.
Over a 150 ms round trip, 4 calls at a time carry about 26 one-recipient messages a second and 16 carry about 105;
the same 16 against a provider that is struggling only earn HTTP 429s, and retrying them at once would be a storm.
So each route's window is adjusted by what its calls report, additive increase and multiplicative decrease (AIMD):

- every call that succeeds while the window was full, and answered no slower than the provider usually does, adds
  1/window (so the window grows by about one call per round trip), up to the route's ceiling: SMS_SEND_CONCURRENCY_MAX,
  and never more calls than the route's rate allows in a second. A call that had to wait for its slot of the send
  rate does not grow it: the rate, not the window, was the limit (TCP's rule for an application-limited sender), and
  more calls in flight would only be more threads waiting for the pacer;
- a call answered 429 or 5xx, timed out, or unreachable halves the window (never below one call), and so does a
  provider that has slowed down: its smoothed answer time (TCP's SRTT, weight 1/8) above twice its recent fastest;
- one cut per round trip: the calls that were already in flight when the window was cut carry news that is already
  acted on, so a burst of 429s from one overload halves the window once, not once per call.

SMS_SEND_CONCURRENCY is the window a route starts with (and comes back to when the worker restarts). The window lives
in the worker process, per route: each worker probes for itself, as each TCP connection does; the pacer in Redis
(`notifications.sms.ratelimit.Pacer`) is what holds the deployment-wide rate.

`AimdWindow` is the arithmetic, pure and clocked from outside so that tests can drive it; `SendGate` puts it around
the sending threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from config.metrics import SMS_SEND_WINDOW

# What a call reports to the window.
# The factor of a cut (TCP's 1/2).
DECREASE_FACTOR = 0.5
# Weight of the newest answer time in the smoothed one (TCP's 1/8).
SRTT_WEIGHT = 0.125
# The provider has slowed down when the smoothed answer time passes this many times the recent fastest ...
SLOW_FACTOR = 2.0
# ... and is this many seconds above it: a loopback provider answering in 2 ms instead of 1 has not slowed down.
SLOW_MARGIN_SECONDS = 0.05
# The fastest answer is forgotten after this long, so a provider that moved further away becomes the new normal.
BASE_RTT_PERIOD_SECONDS = 30.0
# The smallest window: one call at a time still learns when the provider is back.
MIN_WINDOW = 1.0


class CallSignal(StrEnum):
    """What one provider call says about the route's capacity."""

    ANSWERED = "answered"  # the provider answered (whatever it said about each number)
    CONGESTED = "congested"  # 429, 5xx, timeout, connection failure: it could not take the call
    NEUTRAL = "neutral"  # says nothing of capacity: refused credentials, or the call never went out


@dataclass(frozen=True)
class Ticket:
    """One call's place in the window: when it began, and whether it filled the window (only a full window grows)."""

    started: float
    window_full: bool


class AimdWindow:
    """The AIMD arithmetic of one route: `begin` a call, `end` it with its signal and answer time; `limit` is how
    many calls may be in flight now."""

    def __init__(self, initial: float, ceiling: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(MIN_WINDOW, float(ceiling))
        self.window = min(max(MIN_WINDOW, float(initial)), self.ceiling)
        self.clock = clock
        self.srtt: float | None = None
        self.base_rtt: float | None = None  # the fastest answer of the current and the previous period
        self._period_fastest: float | None = None
        self._period_ends = clock() + BASE_RTT_PERIOD_SECONDS
        self._last_cut = -math.inf
        self.cuts = 0

    @property
    def limit(self) -> int:
        return max(int(MIN_WINDOW), int(self.window))

    def begin(self, in_flight: int) -> Ticket:
        """A call starts while `in_flight` others are out."""
        return Ticket(started=self.clock(), window_full=in_flight + 1 >= self.limit)

    def end(self, ticket: Ticket, signal: CallSignal, seconds: float | None = None, rate_limited: bool = False) -> None:
        """A call ended: grow on a prompt answer to a full window (unless the send rate held the call back), cut on
        congestion or a slowed provider."""
        if signal is CallSignal.NEUTRAL:
            return
        if signal is CallSignal.CONGESTED:
            self._cut(ticket)
            return
        if seconds is not None:
            self._sample(seconds)
            if self.slowed_down():
                self._cut(ticket)
                return
        if ticket.window_full and not rate_limited:
            self.window = min(self.ceiling, self.window + 1.0 / self.window)

    def slowed_down(self) -> bool:
        """Is the provider answering markedly slower than it recently did?"""
        if self.srtt is None or self.base_rtt is None:
            return False
        return self.srtt > SLOW_FACTOR * self.base_rtt and self.srtt > self.base_rtt + SLOW_MARGIN_SECONDS

    def _sample(self, seconds: float) -> None:
        self.srtt = seconds if self.srtt is None else (1 - SRTT_WEIGHT) * self.srtt + SRTT_WEIGHT * seconds
        now = self.clock()
        if now >= self._period_ends:
            # The new base is the fastest of the period just ended (or this answer): an old record low fades.
            self.base_rtt = self._period_fastest if self._period_fastest is not None else seconds
            self._period_fastest = None
            self._period_ends = now + BASE_RTT_PERIOD_SECONDS
        self._period_fastest = seconds if self._period_fastest is None else min(self._period_fastest, seconds)
        self.base_rtt = seconds if self.base_rtt is None else min(self.base_rtt, seconds)

    def _cut(self, ticket: Ticket) -> None:
        if ticket.started <= self._last_cut:
            return  # this call was out before the last cut: its news is already acted on
        self.window = max(MIN_WINDOW, self.window * DECREASE_FACTOR)
        self._last_cut = self.clock()
        self.cuts += 1
        if self.srtt is not None and self.base_rtt is not None and self.slowed_down():
            # Start the next judgement afresh, or one slow spell would cut the window once per round trip for as
            # long as the average takes to come down.
            self.srtt = self.base_rtt


class SendGate:
    """The window of one route around the sending threads: `enter` blocks while the window is full, `leave` reports
    how the call went. Thread-safe; the window is published as the `gateway_sms_send_window` gauge."""

    def __init__(self, route: str, initial: float, ceiling: float, clock: Callable[[], float] = time.monotonic):
        self.route = route
        self.aimd = AimdWindow(initial, ceiling, clock)
        self.in_flight = 0
        self._changed = threading.Condition()
        self._gauge = SMS_SEND_WINDOW.labels(route=route)
        self._gauge.set(self.aimd.window)

    @property
    def window(self) -> float:
        return self.aimd.window

    def enter(self) -> Ticket:
        with self._changed:
            while self.in_flight >= self.aimd.limit:
                self._changed.wait()
            ticket = self.aimd.begin(self.in_flight)
            self.in_flight += 1
            return ticket

    def leave(
        self, ticket: Ticket, signal: CallSignal, seconds: float | None = None, rate_limited: bool = False
    ) -> None:
        with self._changed:
            self.in_flight -= 1
            self.aimd.end(ticket, signal, seconds, rate_limited)
            self._gauge.set(self.aimd.window)
            self._changed.notify_all()
