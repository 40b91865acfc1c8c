"""One send rate per route for the whole deployment, kept in Redis so that it holds across workers and machines.

Two steps, both shared by every worker. A round reserves its messages from a token bucket (`RateLimiter`) before it
claims them, so that claimed rows are rows about to be sent: a round waits for the rate before its claim, never after.
But the rate must also hold in every second, not only on average: an SMPP link counts its throughput per second and
throttles or refuses a burst, and spending a round's tokens at once sent 57 messages in one second at a rate of 10
(two workers). So every provider call then asks the pacer (`Pacer`) for its own release time just before it goes
out, and the pacer hands out times that keep two rules across all workers:

- spacing: a call of n messages is followed by the next no sooner than n / rate seconds later, so calls spread
  evenly over the second instead of leaving together (the slot times of GCRA with no burst);
- the window: with its messages, no one-second window ending at its release holds more than `rate` messages, however
  the batch sizes mix (a call of 1 followed by a call of 10 at 10 a second would otherwise put 11 in one second).
  The window is PACE_GUARD_SECONDS longer than a second, because the provider counts arrivals, not releases: a call
  that leaves a little late (a busy worker thread, the HTTP request) must not land in a second that is already full.
  The price is that a saturated route sends at rate / (1 + guard), 5% under its rate.

Both are one Lua script, one round trip, on Redis's own clock (workers with skewed clocks agree); it keeps the
release times of the last second in a sorted set. The same round trip checks the pause flag: while sending is paused
nothing is released and the answer is -1.

The bucket lets a round claim at most a second of the rate ahead of the pacer, so a claimed row waits for its slot
about a second at most: far inside SMS_CLAIM_TIMEOUT_SECONDS, however many workers share the rate.
"""

from __future__ import annotations

import redis

# How much longer than a second the pacer's window is: the lateness between a call's slot and its arrival at the
# provider that the rate survives (a few milliseconds on an idle worker, 40-150 ms on a loaded two-core machine).
PACE_GUARD_SECONDS = 0.05
# How long a route's pacing record outlives its last call.
PACE_KEY_TTL_SECONDS = 3600
# The keys of a route's pacer: the release times of the last second (a sorted set), and the next free slot.
PACE_SLOTS_KEY = "sms:pace:{route}:slots"
PACE_NEXT_KEY = "sms:pace:{route}:next"

# KEYS: 1 release log (sorted set: member "<seq>:<messages>", score the release time), 2 state hash (next, seq),
# 3 the pause flag. ARGV: 1 rate per second, 2 messages of this call, 3 key TTL, 4 the window's length in seconds.
# Answers the seconds to wait, or -1.
_RELEASE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return '-1' end
local rate = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local span = tonumber(ARGV[4])
local at = math.max(now, tonumber(redis.call('HGET', KEYS[2], 'next') or '0'))
local total = count
local recent = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', string.format('(%.6f', at - span), 'WITHSCORES',
  'LIMIT', 0, math.ceil(rate) + 1)
for i = 1, #recent, 2 do
  total = total + tonumber(string.match(recent[i], ':(%d+)$'))
  if total > rate then
    at = math.max(at, tonumber(recent[i + 1]) + span)
    break
  end
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('ZADD', KEYS[1], string.format('%.6f', at), seq .. ':' .. count)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', at - span))
redis.call('HSET', KEYS[2], 'next', string.format('%.6f', at + count / rate))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return string.format('%.6f', at - now)
"""


# A token bucket that allows debt: a caller reserves tokens now and is told how long to wait before using them.
# Reserving is one atomic step, so two workers never both spend the same second's allowance. Redis's own clock is
# used, so that workers on machines with skewed clocks agree. The same round trip checks the pause flag: while it is
# set, nothing is reserved and the answer is -1.
_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return '-1' end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate) - wanted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


class RateLimiter:
    """`reserve(n)` returns the seconds to wait before claiming a round of `n` messages (-1: paused); `refund(n)`
    gives unused ones back."""

    def __init__(
        self, connection: redis.Redis, key: str, paused_key: str, rate_per_second: float, burst: float | None = None
    ):
        self.key = key
        self.paused_key = paused_key
        self.rate = rate_per_second
        self.burst = burst if burst is not None else max(rate_per_second, 1.0)
        self._script = connection.register_script(_RESERVE)

    def reserve(self, count: int) -> float:
        return float(self._script(keys=[self.key, self.paused_key], args=[self.rate, self.burst, count]))

    def refund(self, count: int) -> None:
        if count > 0:
            self._script(keys=[self.key, self.paused_key], args=[self.rate, self.burst, -count])


class Pacer:
    """`release(n)` returns the seconds to wait before a call of `n` messages may go out (-1: sending is paused).

    A released slot is spent whether or not the call is made: giving it back could let a later caller's slot fall
    inside a second that is already full."""

    def __init__(self, connection: redis.Redis, route: str, paused_key: str, rate_per_second: float):
        self.keys = [PACE_SLOTS_KEY.format(route=route), PACE_NEXT_KEY.format(route=route), paused_key]
        self.rate = rate_per_second
        self._script = connection.register_script(_RELEASE)

    def release(self, count: int) -> float:
        return float(
            self._script(keys=self.keys, args=[self.rate, count, PACE_KEY_TTL_SECONDS, 1 + PACE_GUARD_SECONDS])
        )
