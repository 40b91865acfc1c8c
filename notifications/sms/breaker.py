"""A provider-wide circuit breaker, kept in Redis so that every worker on every machine sees the same state.

Why: when the provider is down, every call fails the same way whatever the message. Without a breaker each held
message waits out its own growing backoff, so after a two-minute outage the backlog leaks out over the next half hour.
With it, the messages stay queued and unblamed while the provider is down, one call probes now and then, and the
moment a probe succeeds the whole backlog is due at once.

The states, per route (each route of `SMS_ROUTES` has its own breaker):
- closed: calls go out; `failures` counts consecutive provider-wide failures (5xx, 429, timeouts, connection errors),
  any answered call resets it.
- open: after `SMS_BREAKER_FAILURES` consecutive failures, for `SMS_BREAKER_COOLDOWN_SECONDS`: no call goes out.
- half-open: once the cool-down has passed, one worker (a lease in Redis, so a dead prober does not block the rest)
  sends one batch as the probe. Success closes the breaker; failure opens it for another cool-down.

Per-recipient trouble (a number the provider answers "try later" for) is not the provider's outage: it keeps the
per-message backoff. Each step is one Lua script on Redis's own clock, so workers with skewed clocks agree.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import redis

from config.metrics import SMS_BREAKER_TRANSITIONS
from config.settings import AFRICASTALKING_ROUTE, Settings

log = logging.getLogger(__name__)

BREAKER_KEY = "sms:breaker:{route}"
# How long a worker waits before asking again while another worker's probe is out.
PROBE_POLL_SECONDS = 0.25
# A probe lease outlives the probe's own timeout by this much before another worker may probe instead.
PROBE_LEASE_SLACK_SECONDS = 5.0
# The breaker's record outlives its last change by this long, so a forgotten route leaves nothing behind.
KEY_TTL_SECONDS = 86400


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# KEYS[1] the breaker hash; ARGV[1] probe lease seconds. Answers "go", "probe", or the seconds to wait.
_PERMIT = """
local opened = redis.call('HGET', KEYS[1], 'open_until')
if not opened then return 'go' end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if now < tonumber(opened) then return tostring(tonumber(opened) - now) end
local lease = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < lease then return tostring(math.min(lease - now, tonumber(ARGV[2]))) end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[1])))
return 'probe'
"""

# KEYS[1] the breaker hash; ARGV: 1 succeeded (1/0), failures threshold, cool-down seconds, key TTL.
# Answers the state entered by this call ("closed", "open"), or "" when the state did not change.
_RECORD = """
local opened = redis.call('HGET', KEYS[1], 'open_until')
if ARGV[1] == '1' then
  if opened or redis.call('HGET', KEYS[1], 'failures') then
    redis.call('DEL', KEYS[1])
    if opened then return 'closed' end
  end
  return ''
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if opened then
  if now >= tonumber(opened) then
    -- the probe failed (or a call that began before the breaker opened): another cool-down
    redis.call('HSET', KEYS[1], 'open_until', tostring(now + tonumber(ARGV[3])))
    redis.call('HDEL', KEYS[1], 'probe_until')
    return 'open'
  end
  return ''
end
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + tonumber(ARGV[3])))
  return 'open'
end
return ''
"""

# KEYS[1] the breaker hash. Answers {failures, open_until or '', now}.
_READ = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'failures', 'open_until')
return {state[1] or '0', state[2] or '', tostring(now)}
"""


@dataclass(frozen=True)
class Permit:
    """May a round go out: `go` (breaker closed), `probe` (this caller sends the one probe), else wait `wait` s."""

    go: bool
    probe: bool = False
    wait: float = 0.0


@dataclass(frozen=True)
class BreakerStatus:
    state: BreakerState
    failures: int  # consecutive provider-wide failures so far
    retry_in: float  # seconds until a round may ask for a permit again (0 when closed)


class CircuitBreaker:
    """The breaker of one provider route. `permit()` before a round, `succeeded()`/`failed()` after each call."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        failures: int,
        cooldown_seconds: float,
        probe_timeout_seconds: float,
        route: str = AFRICASTALKING_ROUTE,
        defer_successes: bool = False,
    ) -> None:
        self.route = route
        self.redis = connection
        # The dispatcher's breakers tell Redis of an answered call with the next round trip their process makes
        # anyway (`tell_with`), instead of one round trip of its own after every call; see `succeeded`.
        self.defer_successes = defer_successes
        self._untold = False
        self._untold_lock = threading.Lock()
        self.key = BREAKER_KEY.format(route=route)
        self.threshold = failures
        self.cooldown = cooldown_seconds
        self.lease = probe_timeout_seconds + PROBE_LEASE_SLACK_SECONDS
        self._permit = connection.register_script(_PERMIT)
        self._record = connection.register_script(_RECORD)
        self._read = connection.register_script(_READ)

    def permit(self) -> Permit:
        self.tell()
        answer = self._permit(keys=[self.key], args=[self.lease, PROBE_POLL_SECONDS])
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        if answer == "go":
            return Permit(go=True)
        if answer == "probe":
            log.info("SMS route %s: cool-down over, probing the provider", self.route)
            return Permit(go=True, probe=True)
        return Permit(go=False, wait=max(float(answer), 0.0))

    def succeeded(self) -> None:
        """The provider answered a call: reset the count, and close the breaker if it was open.

        A success seen by any worker must break another's run of failures, or the breaker would open on failures
        that were never consecutive. With `defer_successes` the success is noted here and reaches Redis with this
        process's next round trip: the next call's "call begun" note (`tell_with`), the end of the round, or this
        breaker's own next step, whichever comes first; so it is never later than one call, and always before
        this process's next failure. That saves a round trip per provider call."""
        if self.defer_successes:
            with self._untold_lock:
                self._untold = True
            return
        self._changed(self._record(keys=[self.key], args=[1, self.threshold, self.cooldown, KEY_TTL_SECONDS]))

    def failed(self) -> None:
        """A call failed provider-wide (5xx, 429, timeout, connection error)."""
        self.tell()
        self._changed(self._record(keys=[self.key], args=[0, self.threshold, self.cooldown, KEY_TTL_SECONDS]))

    def status(self) -> BreakerStatus:
        self.tell()
        failures, opened, now = (
            part.decode() if isinstance(part, bytes) else str(part) for part in self._read(keys=[self.key])
        )
        if not opened:
            return BreakerStatus(BreakerState.CLOSED, int(failures), 0.0)
        if float(now) < float(opened):
            return BreakerStatus(BreakerState.OPEN, int(failures), float(opened) - float(now))
        return BreakerStatus(BreakerState.HALF_OPEN, int(failures), PROBE_POLL_SECONDS)

    def tell(self) -> None:
        """Tell Redis of an answered call not told yet, in a round trip of its own (nothing when there is none)."""
        with self._untold_lock:
            untold, self._untold = self._untold, False
        if untold:
            self._changed(self._record(keys=[self.key], args=[1, self.threshold, self.cooldown, KEY_TTL_SECONDS]))

    def tell_with(self, pipe: redis.client.Pipeline) -> bool:
        """Queue an answered call not told yet on `pipe`, a pipeline its caller is about to send anyway; True if it
        did, and the caller then hands that command's answer to `told`."""
        with self._untold_lock:
            untold, self._untold = self._untold, False
        if untold:
            # EVAL, not the registered script's EVALSHA: a pipeline runs SCRIPT EXISTS first for those, a round trip.
            pipe.eval(_RECORD, 1, self.key, 1, self.threshold, self.cooldown, KEY_TTL_SECONDS)
        return untold

    def told(self, answer: bytes | str | None) -> None:
        """The answer to a success queued by `tell_with`."""
        self._changed(answer)

    def _changed(self, entered: bytes | str | None) -> None:
        entered = entered.decode() if isinstance(entered, bytes) else (entered or "")
        if not entered:
            return
        SMS_BREAKER_TRANSITIONS.labels(route=self.route, state=entered).inc()
        if entered == BreakerState.OPEN:
            log.error("SMS route %s: provider failing; breaker open for %ss", self.route, self.cooldown)
        else:
            log.warning("SMS route %s: provider answering again; breaker closed, backlog due now", self.route)


def route_breakers(
    connection: redis.Redis, settings: Settings, names: Iterable[str] | None = None, *, defer_successes: bool = False
) -> dict[str, CircuitBreaker]:
    """One breaker for each route, by name: `names`, else every route the settings name (Africa's Talking and each
    Kannel route). The dispatcher asks them before its calls (`defer_successes`: see `CircuitBreaker.succeeded`),
    and the metrics page reports them."""
    if names is None:
        names = [AFRICASTALKING_ROUTE, *(route.name for route in settings.kannel_routes)]
    return {
        name: CircuitBreaker(
            connection,
            failures=settings.sms_breaker_failures,
            cooldown_seconds=settings.sms_breaker_cooldown_seconds,
            probe_timeout_seconds=settings.at_timeout_seconds,
            route=name,
            defer_successes=defer_successes,
        )
        for name in names
    }
