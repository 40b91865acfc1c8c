"""One send rate for the whole deployment, kept in Redis so that it holds across workers and machines."""

from __future__ import annotations

import redis

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
    """`reserve(n)` returns the seconds to wait before sending `n` messages (-1: paused); `refund(n)` gives unused
    ones back."""

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
