"""Per-number limits on what one caller can make the programme spend: SMS it pays for, and staff time.

Anyone can dial the USSD code or text the programme, and every COVID-19 tips SMS or keyword reply is paid for by
the programme; a script dialling from one number all day would drain the SMS credit that grant notices need. The
counts live in Redis, so that every web and worker process, on every machine, counts the same requests. The same
windows limit the national IDs one number may type at registration and the staff login tries per caller address
and per account (docs/security.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import redis

from config.settings import Settings

COVID_TIPS = "covid_tips"
KEYWORD_REPLY = "keyword_reply"
CALLBACK = "callback"
NATIONAL_ID_ATTEMPT = "national_id_attempt"
# Staff login tries, keyed by the caller's address and by the e-mail address tried (not phone numbers, but the same
# sliding window shared by every web process).
LOGIN_ADDRESS = "login_address"
LOGIN_ACCOUNT = "login_account"
LOGIN_WINDOW_SECONDS = 15 * 60
DAY_SECONDS = 24 * 3600
HOUR_SECONDS = 3600
# How long one number's call-back request may hold its guard; far above one USSD hop, short enough that a process
# that died holding it does not lock the number out for long.
GUARD_SECONDS = 30

# A sliding window: the times of the allowed requests of the last `window` seconds, in a sorted set. Checking and
# recording are one atomic step, so that concurrent requests from one number (several web threads, several
# machines) cannot all pass on the same free slot. Redis's own clock is used, so machines with skewed clocks agree.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], window)
return 1
"""


class NumberLimits:
    """`allow(kind, phone)` counts one request of `kind` and says whether it is within the number's limit."""

    def __init__(self, connection: redis.Redis, settings: Settings):
        self.connection = connection
        self.windows = {
            COVID_TIPS: (settings.covid_tips_sms_per_day, DAY_SECONDS),
            KEYWORD_REPLY: (settings.keyword_replies_per_hour, HOUR_SECONDS),
            NATIONAL_ID_ATTEMPT: (settings.national_id_attempts_per_day, DAY_SECONDS),
            LOGIN_ADDRESS: (settings.login_attempts_per_address, LOGIN_WINDOW_SECONDS),
            LOGIN_ACCOUNT: (settings.login_attempts_per_account, LOGIN_WINDOW_SECONDS),
        }

    def allow(self, kind: str, phone: str) -> bool:
        """True, and counted, when `phone` has made fewer than its limit of `kind` in the window; else False."""
        limit, window = self.windows[kind]
        return bool(self._take_script(keys=[_key(kind, phone)], args=[window, limit, uuid.uuid4().hex]))

    @cached_property
    def _take_script(self):
        """Registered on first use, so that an engine built without Redis (screen previews) needs none."""
        return self.connection.register_script(_TAKE)

    @contextmanager
    def guard(self, kind: str, phone: str) -> Iterator[bool]:
        """Yields True to the one caller of `phone` that holds `kind`'s guard, False to those that came meanwhile.

        For a limit the database decides (open call-back requests): the check and the insert run under the guard,
        so that a burst from one number cannot pass the check together before any of them has inserted.
        """
        key, token = _key(kind, phone) + ":guard", uuid.uuid4().hex
        held = bool(self.connection.set(key, token, nx=True, ex=GUARD_SECONDS))
        try:
            yield held
        finally:
            if held and self.connection.get(key) == token.encode():
                self.connection.delete(key)


def _key(kind: str, phone: str) -> str:
    return f"limit:{kind}:{phone}"
