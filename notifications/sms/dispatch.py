"""Sending the outbox: claim a batch, call the provider once, record every recipient's fate.

Exactly once, step by step:
1. A message row is written in the transaction of the change it reports (`outbox.owe_message`); the drain job is
   enqueued after the commit (`queues.kick`), and the worker's sweep enqueues whatever that missed.
2. A worker claims a batch with one conditional UPDATE (`status = 'queued'` → `'submitting'`, with its own claim
   token), so two workers, an RQ retry or a sweep can never claim the same row twice.
3. It calls the provider, then records each recipient: accepted rows get their provider id and never go back to
   `queued`; refused rows fail; rows the provider could not take now go back to `queued` with a backoff.

The one window no design can close: the provider accepted the batch and the worker died (or the answer timed out)
before step 3 was recorded. The rows stay `submitting`; the sweep then looks for the provider's delivery reports
for those numbers (reports for ids we never stored are kept for exactly this) and adopts them. If no report comes
within `SMS_UNKNOWN_OUTCOME_SECONDS` (the provider reports on every message it takes, so silence that long means
it did not take it: the worker died before the request left), the message is queued again, noted `OutcomeUnknown`,
and staff are alerted. A duplicate is then possible only if the provider took the first one and never reported on
it.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import redis
from sqlalchemy import ColumnElement, Integer, String, Update, and_, any_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from config import Settings
from config.logging import log_context
from config.metrics import (
    CALL_OK,
    CALL_REFUSED,
    CALL_UNAVAILABLE,
    CALL_UNKNOWN,
    SMS_PROVIDER_CALL_SECONDS,
    SMS_PROVIDER_CALLS,
)
from models.base import UtcDateTime, as_utc, utcnow
from models.campaigns import Campaign, CampaignStatus
from models.db import Database, dialect_name
from models.messages import (
    DeliveryReport,
    MessagePriority,
    MessageStatus,
    OutboundMessage,
    SystemAlert,
)
from models.phone import mask_phone
from notifications.campaigns.quiet_hours import in_quiet_hours
from notifications.sms.breaker import BreakerState, CircuitBreaker, route_breakers
from notifications.sms.congestion import CallSignal, SendGate
from notifications.sms.delivery import REPORT_STATUSES, apply_kept_reports, apply_status, count_final
from notifications.sms.providers.base import (
    Outcome,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientResult,
    SmsProvider,
)
from notifications.sms.queues import PAUSED_KEY, kick
from notifications.sms.ratelimit import PACE_GUARD_SECONDS, Pacer, RateLimiter
from notifications.sms.routing import Route, Router, build_routes

log = logging.getLogger(__name__)

# Redis set of the message ids of a round whose provider call has begun; kept as long as their outcome may be
# settled, plus a margin.
STARTED_KEY = "sms:started:{token}"
STARTED_KEY_SLACK_SECONDS = 3600
# Written first into a round's record, so that a round whose worker died before any call still has one.
ROUND_MARKER = 0
# Batches a round holds per call the route's window lets out at once: enough to spread a round's bookkeeping over
# many calls, few enough that a round's claimed rows leave within a few calls' time.
BATCHES_PER_THREAD = 4
# A drain's first round: one batch per call the window lets out, so that the first calls leave soon after the job
# starts; the rounds after it double up to BATCHES_PER_THREAD.
FIRST_ROUND_BATCHES_PER_THREAD = 1
# A call that waited longer than this for its send-rate slot was held back by the rate, not by the provider.
PACED_SECONDS = 0.001
# Noted on a message sent again because the outcome of its first provider call was never learnt.
OUTCOME_UNKNOWN = "OutcomeUnknown"
ALERT_NO_CREDIT = "sms_no_credit"
ALERT_CREDENTIALS = "sms_credentials"
ALERT_OUTCOME_UNKNOWN = "sms_outcome_unknown"
# The per-recipient answers a round records for its accepted messages, in the order `_Statements` binds them.
ANSWER_FIELDS = ("id", "pid", "cost", "parts")


@dataclass(frozen=True)
class _Batch:
    """One provider call of a round: a text, the route it goes out on, and its (message id, number) rows."""

    route: str
    body: str
    rows: list[tuple[int, str]]


class SendingPausedError(ProviderUnavailableError):
    """The call never went out: sending was paused (out of credit, credentials refused) while it waited for its
    slot. Its rows go back to the queue as after a provider-wide failure, but nobody blames the provider."""


@dataclass
class _Round:
    """A claimed round whose provider calls are in flight."""

    token: str
    futures: list[Future]
    size: int


@dataclass
class Dispatcher:
    settings: Settings
    db: Database
    redis: redis.Redis
    provider: SmsProvider  # Africa's Talking; Kannel routes are built from the settings unless `routes` is given
    sleep: Callable[[float], None] = time.sleep
    routes: dict[str, Route] | None = None
    router: Router = field(init=False)
    limiters: dict[str, RateLimiter] = field(init=False)
    pacers: dict[str, Pacer] = field(init=False)
    gates: dict[str, SendGate] = field(init=False)
    breakers: dict[str, CircuitBreaker] = field(init=False)
    _executors: dict[str, ThreadPoolExecutor] = field(init=False, default_factory=dict)
    # Checked before each bulk batch; transactional messages are never held. Default: outside quiet hours.
    bulk_allowed: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if self.routes is None:
            self.routes = build_routes(self.settings, self.provider)
        self.router = Router(self.settings.sms_routes)
        # Per route (each Kannel route has its own rate), one pause flag for all: a bucket that a round reserves before
        # its claim, and a pacer that gives each call its own slot within the second. The bucket fills no faster than
        # the pacer lets calls out when the route is saturated, so claimed rows never queue up behind the pacer.
        self.limiters = {
            name: RateLimiter(self.redis, route.rate_key, PAUSED_KEY, route.rate_per_second / (1 + PACE_GUARD_SECONDS))
            for name, route in self.routes.items()
        }
        self.pacers = {
            name: Pacer(self.redis, name, PAUSED_KEY, route.rate_per_second) for name, route in self.routes.items()
        }
        # One adaptive window of calls in flight per route, in this worker (notifications.sms.congestion).
        self.gates = {
            name: SendGate(name, self.settings.sms_send_concurrency, _window_ceiling(self.settings, route))
            for name, route in self.routes.items()
        }
        # One circuit breaker per route: an outage of one route holds only that route's messages.
        self.breakers = route_breakers(self.redis, self.settings, self.routes, defer_successes=True)
        if self.bulk_allowed is None:
            self.bulk_allowed = lambda: not in_quiet_hours(utcnow(), self.settings.quiet_hours)

    # -- sending ------------------------------------------------------------------------------------------------

    def drain(self, priority: MessagePriority | str, time_budget: float | None = None) -> tuple[int, bool]:
        """Send rounds until nothing is due or `time_budget` seconds pass; returns (messages, more_left).

        Rounds overlap: while one round's provider calls are in flight, the previous round's results are written
        and the next round is claimed, so the database work hides behind the network instead of adding to it.
        While the provider's circuit breaker is open the drain waits for the cool-down (within its budget) and then
        probes, so the backlog leaves as soon as the provider answers again.
        """
        started = time.monotonic()
        handled = 0
        # The first round is one batch per call the window lets out, and each next one twice as deep up to the full
        # BATCHES_PER_THREAD: the first calls leave (and the next round is claimed behind them) after a small claim,
        # instead of waiting for a full round's read and claim.
        depth = FIRST_ROUND_BATCHES_PER_THREAD
        in_flight = self._start_round(priority, depth)
        while True:
            while in_flight is not None:
                over_budget = time_budget is not None and time.monotonic() - started > time_budget
                depth = min(depth * 2, BATCHES_PER_THREAD)
                following = None if over_budget else self._start_round(priority, depth)
                handled += self._finish_round(in_flight)
                if over_budget:
                    return handled, self._has_due(priority)
                # Recording may have put rows back in the queue (a retry with no backoff): look once more.
                in_flight = following if following is not None else self._start_round(priority, depth)
            held = [
                status for status in (b.status() for b in self.breakers.values()) if status.state != BreakerState.CLOSED
            ]
            if not held:
                return handled, False
            remaining = None if time_budget is None else time_budget - (time.monotonic() - started)
            if remaining is None or remaining <= 0:
                return handled, self._has_due(priority)
            self.sleep(min(min(status.retry_in for status in held), remaining))
            in_flight = self._start_round(priority)

    def send_round(self, priority: MessagePriority | str) -> int:
        """One round, start to finish: claim, send, record. Returns how many messages it handled (0: none due,
        paused, or bulk held)."""
        in_flight = self._start_round(priority)
        return 0 if in_flight is None else self._finish_round(in_flight)

    def _start_round(
        self, priority: MessagePriority | str, batches_per_thread: int = BATCHES_PER_THREAD
    ) -> _Round | None:
        """Claim a round of batches and hand its provider calls to the sending threads; None when nothing is due.

        A route's share of a round is at most one second of its send rate, or BATCHES_PER_THREAD batches per call its
        window lets out at once, and its bookkeeping (one read-and-claim, one write, two Redis round trips) is shared
        by all its calls. Claimed rows are always rows about to be sent: the round's tokens are reserved (which waits
        for the rate) before the claim, so its calls' own slots (`_call`) fall within about a second of it.
        """
        priority = MessagePriority(priority)
        while True:
            if priority == MessagePriority.BULK and not self.bulk_allowed():
                return None
            token = uuid.uuid4().hex
            claimed: dict[int, str] = {}
            with self.db.session() as session:
                batches = self._plan_round(session, priority, batches_per_thread)
                batches = self._permitted(batches)
                route_of = {message_id: batch.route for batch in batches for message_id, _ in batch.rows}
                if not route_of:
                    return None
                wait = self._reserve(route_of)
                if wait < 0:  # sending is paused (out of credit, credentials refused)
                    return None
                if wait == 0:
                    claimed = self._claim(session, list(route_of), token, route_of)
            if wait > 0:
                # Wait before claiming, with no transaction open.
                self.sleep(wait)
                with self.db.session() as session:
                    claimed = self._claim(session, list(route_of), token, route_of)
            for route, count in _per_route(route_of, exclude=claimed).items():
                self.limiters[route].refund(count)
            if claimed:
                break
            # Another worker took them all; look again.
        self._note_started(token, [ROUND_MARKER])  # the round's record exists, though no call has begun yet
        batches = [
            _Batch(batch.route, batch.body, [(i, phone) for i, phone in batch.rows if i in claimed])
            for batch in batches
        ]
        futures = [self._pool(batch.route).submit(self._call, token, batch) for batch in batches if batch.rows]
        return _Round(token=token, futures=futures, size=len(claimed))

    def _reserve(self, route_of: dict[int, str]) -> float:
        """Reserve send-rate tokens on every route of a round; the longest wait, or -1 (nothing kept) if paused."""
        counts = _per_route(route_of)
        waits: dict[str, float] = {}
        for route, count in counts.items():
            waits[route] = self.limiters[route].reserve(count)
            if waits[route] < 0:
                for reserved in waits:
                    if reserved != route:
                        self.limiters[reserved].refund(counts[reserved])
                return -1
        return max(waits.values())

    def _finish_round(self, round_: _Round) -> int:
        """Wait for a round's calls and record every result in one transaction; returns the round's size."""
        with log_context(claim=round_.token[:8]):
            outcomes = [future.result() for future in round_.futures]
            self._record(round_.token, outcomes)
        return round_.size

    def _has_due(self, priority: MessagePriority | str) -> bool:
        with self.db.session() as session:
            return (
                session.execute(select(OutboundMessage.id).where(self._due(MessagePriority(priority))).limit(1)).first()
                is not None
            )

    def _pool(self, route: str) -> ThreadPoolExecutor:
        """A route's sending threads: as many as its window may ever let out, so that one route's full window never
        holds up another route's calls. Threads start as calls need them."""
        if route not in self._executors:
            self._executors[route] = ThreadPoolExecutor(
                max_workers=int(self.gates[route].aimd.ceiling), thread_name_prefix=f"sms-send-{route}"
            )
        return self._executors[route]

    def close(self) -> None:
        """Let the sending threads finish and stop (the worker calls this on its way out)."""
        for executor in self._executors.values():
            executor.shutdown(wait=True)
        self._executors.clear()

    def _due(self, priority: MessagePriority):
        return _due(priority, utcnow())

    def _plan_round(
        self, session: Session, priority: MessagePriority, batches_per_thread: int = BATCHES_PER_THREAD
    ) -> list[_Batch]:
        """The next due messages, grouped into batches: one route and one text per batch, a number at most once per
        batch, no more numbers than the route's provider takes a call or its rate allows in a second. Each route's
        share of a round is at most one second of its own rate (or one batch, when the rate is below a batch a
        second)."""
        max_batches = self._round_batches(batches_per_thread)
        quota = {name: _round_size(route, max_batches) for name, route in self.routes.items()}
        due = _statements(dialect_name(session)).due_rows[priority]
        rows = session.connection().execute(due, {"now": utcnow(), "limit": sum(quota.values())}).all()
        open_batches: dict[tuple[str, str], tuple[list[tuple[int, str]], set[str]]] = {}
        batches: list[_Batch] = []
        taken = dict.fromkeys(self.routes, 0)
        opened = dict.fromkeys(self.routes, 0)
        for message_id, phone, body, stored_route in rows:
            # A message that names its route (a keyword reply goes back the way the keyword came) keeps it.
            route = stored_route if stored_route in self.routes else self.router.route_for(phone)
            if route not in self.routes or taken[route] >= quota[route]:
                continue  # a route SMS_ROUTES names but no provider backs is refused at start-up; this waits
            batch, phones = open_batches.get((route, body)) or (None, set())
            if batch is None or len(batch) >= _batch_limit(self.routes[route]) or phone in phones:
                if opened[route] >= max_batches:
                    continue  # this text waits for the next round
                batch, phones = open_batches[(route, body)] = ([], set())
                batches.append(_Batch(route, body, batch))
                opened[route] += 1
            batch.append((message_id, phone))
            phones.add(phone)
            taken[route] += 1
        return batches

    def _claim(
        self, session: Session, ids: list[int], token: str, route_of: dict[int, str] | None = None
    ) -> dict[int, str]:
        """Mark `ids` as ours if they are still queued, each with the route `route_of` gives it (one statement for
        the round, the ids bound as one parameter); returns the ones we got, with their numbers."""
        statements = _statements(dialect_name(session))
        by_route: dict[str, list[int]] = {}
        for message_id, route in (route_of or {}).items():
            by_route.setdefault(route, []).append(message_id)
        params = {"ids": statements.id_set(ids), "token": token, "now": utcnow()}
        if len(by_route) <= 1:
            # The usual round: one route (or none named, as the tests' own claims), one statement built once.
            params["route"] = next(iter(by_route), None)
            claim = statements.claim if by_route else statements.claim_keeping_route
        else:
            claim = statements.claim_routes(list(by_route))
            params.update({f"ids_{index}": statements.id_set(i) for index, i in enumerate(by_route.values())})
        return dict(session.connection().execute(claim, params).all())

    def _call(self, token: str, batch: _Batch) -> tuple[list[tuple[int, str]], object]:
        """One provider call (in a pool thread): the batch's rows with the results, or the exception raised.

        The call first waits for a place in its route's window (how many calls the provider is taking at once), then
        for its slot of the route's send rate, shared by every worker. Then the rows are written down in Redis as
        "call started": if the worker dies, the sweep puts rows that never got that far straight back in the queue,
        and only the others wait for delivery reports. How the call went adjusts the window.
        """
        rows = batch.rows
        gate = self.gates[batch.route]
        ticket = gate.enter()
        signal, seconds, wait = CallSignal.NEUTRAL, None, 0.0
        try:
            wait = self.pacers[batch.route].release(len(rows))
            if wait < 0:
                return rows, SendingPausedError("sending is paused; the call was not made")
            if wait > 0:
                self.sleep(wait)
            self._note_started(token, [message_id for message_id, _ in rows])
            provider = self.routes[batch.route].provider
            breaker = self.breakers[batch.route]
            started = time.perf_counter()
            try:
                results = provider.send(
                    batch.body, [phone for _, phone in rows], [message_id for message_id, _ in rows]
                )
            except ProviderUnavailableError as exc:
                signal = CallSignal.CONGESTED
                self._count_call(batch.route, CALL_UNKNOWN if exc.outcome_unknown else CALL_UNAVAILABLE, started)
                breaker.failed()
                return rows, exc
            except ProviderRejectedError as exc:
                self._count_call(batch.route, CALL_REFUSED, started)
                breaker.succeeded()  # the provider is up and answering, however unwelcome the answer
                return rows, exc
            signal, seconds = CallSignal.ANSWERED, time.perf_counter() - started
            self._count_call(batch.route, CALL_OK, started)
            breaker.succeeded()
            return rows, results
        finally:
            gate.leave(ticket, signal, seconds, rate_limited=wait > PACED_SECONDS)

    def _round_batches(self, batches_per_thread: int = BATCHES_PER_THREAD) -> int:
        """Batches a round may hold per route: `batches_per_thread` for every call the widest window lets out now."""
        return max(gate.aimd.limit for gate in self.gates.values()) * batches_per_thread

    def _count_call(self, route: str, outcome: str, started: float) -> None:
        SMS_PROVIDER_CALLS.labels(route=route, outcome=outcome).inc()
        SMS_PROVIDER_CALL_SECONDS.labels(route=route).observe(time.perf_counter() - started)

    def _permitted(self, batches: list[_Batch]) -> list[_Batch]:
        """The batches whose route's circuit breaker lets them go: none of a route that is down, and only one of a
        route being probed (one call is enough to learn whether it is back)."""
        permits = {route: self.breakers[route].permit() for route in dict.fromkeys(batch.route for batch in batches)}
        kept: list[_Batch] = []
        probed: set[str] = set()
        for batch in batches:
            permit = permits[batch.route]
            if not permit.go or batch.route in probed:
                continue
            if permit.probe:
                probed.add(batch.route)
            kept.append(batch)
        return kept

    def _record(self, token: str, outcomes: list[tuple[list[tuple[int, str]], object]]) -> None:
        """Write every recipient's fate of a round in one transaction; accepted rows in one bulk UPDATE."""
        self._tell_breakers()
        now = utcnow()
        accepted: list[dict] = []
        others: dict[int, RecipientResult] = {}
        unknown: dict[int, str] = {}
        held: dict[int, str] = {}
        pause: tuple[str, str] | None = None
        for rows, outcome in outcomes:
            if isinstance(outcome, ProviderUnavailableError) and outcome.outcome_unknown:
                # The request may have reached the provider: leave the rows for the sweep to settle.
                log.warning(
                    "provider answer lost for %d messages (%s); settling by delivery report", len(rows), outcome
                )
                unknown.update({message_id: str(outcome)[:500] for message_id, _ in rows})
                continue
            if isinstance(outcome, ProviderUnavailableError):
                # Provider-wide trouble, not these messages' fault: they go back as they were, due at once, and
                # the circuit breaker (not a backoff per message) decides when the next call goes out.
                log.warning("provider unavailable for %d messages: %s", len(rows), outcome)
                held.update({message_id: str(outcome)[:500] for message_id, _ in rows})
                continue
            if isinstance(outcome, ProviderRejectedError):
                log.error("provider refused the call (%s); pausing sending", outcome)
                pause = (
                    ALERT_CREDENTIALS,
                    f"The SMS provider refused our requests: {outcome}. Check AT_USERNAME/AT_API_KEY, or the"
                    " KANNEL_<ROUTE>_USERNAME/PASSWORD of a Kannel route.",
                )
                results = {phone: RecipientResult.no_credit(phone, str(outcome)) for _, phone in rows}
            else:
                results = {result.phone: result for result in outcome}
            for message_id, phone in rows:
                result = results.get(phone) or RecipientResult.retry(phone, "missing from answer")
                if result.outcome == Outcome.ACCEPTED:
                    accepted.append(
                        {"id": message_id, "pid": result.message_id, "cost": result.cost, "parts": result.parts}
                    )
                else:
                    others[message_id] = result
                    if result.outcome == Outcome.NO_CREDIT and pause is None:
                        pause = (
                            ALERT_NO_CREDIT,
                            "The SMS account is out of credit: sending is paused. Top up the account.",
                        )
        with self.db.session() as session:
            statements = _statements(dialect_name(session))
            connection = session.connection()
            if accepted:
                connection.execute(statements.mark_accepted, statements.answers(accepted, now))
            for error, ids in _by_value(unknown).items():
                connection.execute(statements.note_error, {"ids": statements.id_set(ids), "error": error})
            for error, ids in _by_value(held).items():
                # Provider-wide trouble: queued again, the attempt not counted (the claim counted it).
                connection.execute(statements.hold, {"ids": statements.id_set(ids), "token": token, "error": error})
            if others:
                messages = session.execute(
                    select(OutboundMessage).where(
                        OutboundMessage.id.in_(list(others)), OutboundMessage.claim_token == token
                    )
                ).scalars()
                for message in messages:
                    self._apply_refusal(message, others[message.id], now)
            if accepted:
                # Reports that overtook the call (kept for ids we had not stored yet): one join, which finds none
                # in the usual case.
                ids = statements.id_set([row["id"] for row in accepted])
                kept = session.execute(statements.kept_reports, {"ids": ids}).scalars().unique().all()
                apply_kept_reports(session, list(kept))
        if pause:
            self._pause(*pause)

    def _apply_refusal(self, message: OutboundMessage, result: RecipientResult, now: datetime) -> None:
        message.claim_token = None
        if result.outcome == Outcome.PERMANENT:
            message.status = MessageStatus.REJECTED
            message.failure_reason = result.status[:64]
            message.last_error = result.error
            message.final_at = now
            count_final(message)
            log.info("message %s to %s refused: %s", message.id, mask_phone(message.phone), result.status)
        elif result.outcome == Outcome.NO_CREDIT:
            message.status = MessageStatus.QUEUED
            message.attempts = max(message.attempts - 1, 0)  # not the message's fault
            message.last_error = result.error
        else:
            self._retry_later(message, result.error or result.status, now)

    def _retry_later(self, message: OutboundMessage, error: str, now: datetime) -> None:
        backoff = self.settings.sms_retry_backoff_seconds
        message.last_error = error[:500]
        if message.attempts > len(backoff):
            message.status = MessageStatus.FAILED
            message.failure_reason = "RetriesExhausted"
            message.final_at = now
            count_final(message)
            log.warning("message %s failed after %d attempts: %s", message.id, message.attempts, error)
            return
        message.status = MessageStatus.QUEUED
        message.next_attempt_at = now + timedelta(seconds=backoff[message.attempts - 1])

    def _pause(self, kind: str, text: str) -> None:
        """Stop all sending for a while and tell staff (once per pause)."""
        if self.redis.set(PAUSED_KEY, kind, nx=True, ex=self.settings.sms_credit_pause_seconds):
            with self.db.session() as session:
                session.add(SystemAlert(kind=kind, text=text))
            log.error("SMS sending paused for %ss: %s", self.settings.sms_credit_pause_seconds, text)

    # -- what the worker's sweep asks of the outbox -------------------------------------------------------------

    def kick_due(self) -> int:
        """Enqueue a drain job for each priority that has a message due; returns how many were enqueued.

        This is what sends what a commit's own kick missed (Redis was down) and what ends quiet hours."""
        kicked = 0
        with self.db.session() as session:
            for priority in MessagePriority:
                due = session.execute(select(OutboundMessage.id).where(self._due(priority)).limit(1)).first()
                if due is not None and kick(self.redis, priority):
                    kicked += 1
        return kicked

    def settle_stuck(self) -> int:
        """Settle messages left `submitting` by a worker that died mid-call; returns how many were settled."""
        now = utcnow()
        claim_cutoff = now - timedelta(seconds=self.settings.sms_claim_timeout_seconds)
        unknown_cutoff = now - timedelta(seconds=self.settings.sms_unknown_outcome_seconds)
        settled = 0
        with self.db.session() as session:
            # Locked, and skipped when locked: two sweeps at once (a worker's start-up sweep beside its sweeper, or
            # two workers) must not both judge a row, or the second, reading before the first commits, re-queues a
            # message the first has just settled by its delivery report, and it is sent twice.
            stuck = session.execute(
                select(OutboundMessage)
                .where(OutboundMessage.status == MessageStatus.SUBMITTING, OutboundMessage.claimed_at < claim_cutoff)
                .order_by(OutboundMessage.id)
                .with_for_update(skip_locked=True)
            ).scalars()
            stuck = list(stuck)
            started = self._calls_started({message.claim_token for message in stuck if message.claim_token})
            for message in stuck:
                report = self._unclaimed_report_for(session, message)
                if message.claim_token in started and message.id not in started[message.claim_token]:
                    # The worker died before this row's call began: it was never sent, so it simply goes back.
                    message.status = MessageStatus.QUEUED
                    message.claim_token = None
                    message.attempts = max(message.attempts - 1, 0)
                    message.last_error = "worker stopped before sending; queued again"
                    log.info("message %s was claimed but never sent; queued again", message.id)
                    settled += 1
                elif report is not None:
                    message.status = MessageStatus.SUBMITTED
                    message.provider_message_id = report.provider_message_id
                    message.submitted_at = message.claimed_at
                    message.claim_token = None
                    apply_status(message, REPORT_STATUSES[report.status], report.failure_reason)
                    session.delete(report)
                    session.flush()
                    log.info("message %s settled by delivery report %s", message.id, report.provider_message_id)
                    settled += 1
                elif as_utc(message.claimed_at) < unknown_cutoff:
                    # The provider reports on every message it takes; none in all this time means it did not take
                    # this one (the worker died before the request left). Send it again, and say so.
                    message.status = MessageStatus.QUEUED
                    message.claim_token = None
                    message.last_error = OUTCOME_UNKNOWN
                    session.add(
                        SystemAlert(
                            kind=ALERT_OUTCOME_UNKNOWN,
                            text=f"SMS {message.id} was re-sent: its worker stopped during the provider call and no "
                            "delivery report came for it. If the provider did take the first one, it arrives twice.",
                        )
                    )
                    log.warning("message %s had no report after its worker died mid-call; queued again", message.id)
                    settled += 1
        return settled

    def _note_started(self, token: str, message_ids: list[int]) -> None:
        """Note in Redis that these messages' call begins; the same round trip tells the breakers of the calls
        answered since the last one (see `CircuitBreaker.succeeded`)."""
        started = STARTED_KEY.format(token=token)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(started, *message_ids)
            pipe.expire(started, self.settings.sms_unknown_outcome_seconds + STARTED_KEY_SLACK_SECONDS)
            told = [breaker for breaker in self.breakers.values() if breaker.tell_with(pipe)]
            answers = pipe.execute()
        for breaker, answer in zip(told, answers[2:], strict=True):
            breaker.told(answer)

    def _tell_breakers(self) -> None:
        """Tell the breakers of every call a finished round had answered, in one round trip (none if none)."""
        with self.redis.pipeline(transaction=False) as pipe:
            told = [breaker for breaker in self.breakers.values() if breaker.tell_with(pipe)]
            answers = pipe.execute() if told else []
        for breaker, answer in zip(told, answers, strict=True):
            breaker.told(answer)

    def _calls_started(self, tokens: set[str]) -> dict[str, set[int]]:
        """For each claim token whose record Redis still holds, the message ids whose provider call began."""
        if not tokens:
            return {}
        ordered = sorted(tokens)
        with self.redis.pipeline(transaction=False) as pipe:
            for token in ordered:
                pipe.exists(STARTED_KEY.format(token=token))
                pipe.smembers(STARTED_KEY.format(token=token))
            answers = pipe.execute()
        known: dict[str, set[int]] = {}
        for index, token in enumerate(ordered):
            exists, members = answers[2 * index], answers[2 * index + 1]
            # A token with no record at all is ambiguous (Redis restarted, or the worker died between the claim
            # and the record): only a round whose record exists can vouch for the rows it does not list.
            if exists:
                known[token] = {int(member) for member in members}
        return known

    def _unclaimed_report_for(self, session: Session, message: OutboundMessage) -> DeliveryReport | None:
        """A kept report to the same number since the claim: the provider did accept that call."""
        return session.execute(
            select(DeliveryReport)
            .where(
                DeliveryReport.phone == message.phone,
                DeliveryReport.received_at >= message.claimed_at,
                DeliveryReport.status.in_(REPORT_STATUSES),
            )
            .order_by(DeliveryReport.id)
            .limit(1)
        ).scalar_one_or_none()


def _due(priority: MessagePriority, now):
    """The condition of a message of `priority` that is due at `now` (a datetime, or a bound parameter)."""
    due = and_(
        OutboundMessage.status == MessageStatus.QUEUED,
        OutboundMessage.priority == priority,
        or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now),
    )
    if priority != MessagePriority.BULK:
        return due
    # A paused or cancelled campaign's messages wait (or were withdrawn): checked on every round, so a pause
    # takes effect within one round.
    sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
    return and_(due, or_(OutboundMessage.campaign_id.is_(None), OutboundMessage.campaign_id.in_(sending)))


def _round_size(route: Route, max_batches: int) -> int:
    """A route's share of one round: one second of its rate, at least one batch, at most `max_batches` batches."""
    batch_size = _batch_limit(route)
    return min(max_batches * batch_size, max(batch_size, int(route.rate_per_second)))


def _batch_limit(route: Route) -> int:
    """The most numbers one call of the route carries: what its provider takes, and never more than one second of
    its rate, since a call's numbers leave together and the rate must hold in every second."""
    return max(1, min(route.provider.batch_size, int(route.rate_per_second)))


def _window_ceiling(settings: Settings, route: Route) -> int:
    """The most calls a route's window may reach: SMS_SEND_CONCURRENCY_MAX, and no more calls than the route's rate
    lets out in a second (more could only wait for the pacer)."""
    return max(1, min(settings.sms_send_concurrency_max, math.ceil(route.rate_per_second)))


def _per_route(route_of: dict[int, str], exclude: dict[int, str] | None = None) -> dict[str, int]:
    """How many of the messages go out on each route (leaving out those in `exclude`)."""
    counts: dict[str, int] = {}
    for message_id, route in route_of.items():
        if exclude is None or message_id not in exclude:
            counts[route] = counts.get(route, 0) + 1
    return counts


def _by_value(values_of: dict[int, str]) -> dict[str, list[int]]:
    """The ids of each distinct value (an error text): one UPDATE per value instead of one per row."""
    ids_of: dict[str, list[int]] = {}
    for message_id, value in values_of.items():
        ids_of.setdefault(value, []).append(message_id)
    return ids_of


class _Statements:
    """A round's bookkeeping statements, built once per dialect, each taking a whole set of rows as ONE bound
    parameter: a PostgreSQL array, or a JSON document read by SQLite's `json_each`.

    Why: a round claims and records up to 1,600 messages. As IN lists and per-row executemany, SQLAlchemy spent more
    CPU building, binding and processing those parameters than the database spent running the statements, and that
    CPU is taken from the sending threads. Built once, a statement costs one cache lookup per use."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        messages = OutboundMessage
        self.claim_keeping_route = self._claim_statement({})
        self.claim = self._claim_statement({"route": bindparam("route")})
        self.note_error = update(messages).where(self.in_set("ids")).values(last_error=bindparam("error"))
        self.hold = (
            update(messages)
            .where(self.in_set("ids"), messages.claim_token == bindparam("token"))
            .values(
                status=MessageStatus.QUEUED,
                claim_token=None,
                attempts=messages.attempts - 1,
                last_error=bindparam("error"),
            )
        )
        self.kept_reports = (
            select(messages)
            .join(DeliveryReport, DeliveryReport.provider_message_id == messages.provider_message_id)
            .where(self.in_set("ids"))
        )
        self.mark_accepted = self._mark_accepted_statement()
        # The next due messages of a priority, oldest first, as a round plans them (Core rows: no ORM loading).
        self.due_rows = {
            priority: select(messages.id, messages.phone, messages.body, messages.route)
            .where(_due(priority, bindparam("now", type_=UtcDateTime)))
            .order_by(messages.id)
            .limit(bindparam("limit"))
            for priority in MessagePriority
        }

    def in_set(self, name: str) -> ColumnElement[bool]:
        """`outbound_messages.id` is one of the ids bound as `name` (see `id_set`)."""
        if self.postgres:
            return OutboundMessage.id == any_(bindparam(name, type_=ARRAY(Integer)))
        return OutboundMessage.id.in_(select(func.json_each(bindparam(name)).table_valued("value").c.value))

    def id_set(self, ids: Sequence[int]) -> list[int] | str:
        """The value to bind for a set of ids."""
        return list(ids) if self.postgres else json.dumps(list(ids))

    def answers(self, accepted: list[dict], now: datetime) -> dict:
        """The parameters of `mark_accepted`: the per-recipient answers of a round's accepted messages."""
        if self.postgres:
            return {"now": now, **{f"answer_{name}": [row[name] for row in accepted] for name in ANSWER_FIELDS}}
        return {"now": now, "answers": json.dumps([[row[name] for name in ANSWER_FIELDS] for row in accepted])}

    def claim_routes(self, routes: list[str]) -> Update:
        """The claim of a round that spans several routes: each set of ids gets its route (`ids_<n>`)."""
        route = case(*((self.in_set(f"ids_{index}"), name) for index, name in enumerate(routes)))
        return self._claim_statement({"route": route})

    def _claim_statement(self, route: dict) -> Update:
        messages = OutboundMessage
        return (
            update(messages)
            .where(self.in_set("ids"), messages.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.SUBMITTING,
                claim_token=bindparam("token"),
                claimed_at=bindparam("now"),
                attempts=messages.attempts + 1,
                **route,
            )
            .returning(messages.id, messages.phone)
        )

    def _mark_accepted_statement(self) -> Update:
        """ONE UPDATE for every accepted message of a round, joined to the per-recipient answers (provider id,
        cost, parts): `unnest` of one array per field on PostgreSQL, `json_each` of one document on SQLite."""
        if self.postgres:
            types = {"id": Integer, "pid": String, "cost": String, "parts": Integer}
            answers = (
                func.unnest(*(bindparam(f"answer_{name}", type_=ARRAY(types[name])) for name in ANSWER_FIELDS))
                .table_valued(*ANSWER_FIELDS)
                .render_derived(name="accepted")
            )
        else:
            each = func.json_each(bindparam("answers")).table_valued("value")
            answers = select(
                *(
                    func.json_extract(each.c.value, f"$[{index}]").label(name)
                    for index, name in enumerate(ANSWER_FIELDS)
                )
            ).subquery("accepted")
        return (
            update(OutboundMessage)
            .where(OutboundMessage.id == answers.c.id)
            .values(
                status=MessageStatus.SUBMITTED,
                provider_message_id=answers.c.pid,
                cost=answers.c.cost,
                # A provider that does not say how many parts (Kannel) leaves the count the outbox wrote.
                parts=func.coalesce(answers.c.parts, OutboundMessage.parts),
                submitted_at=bindparam("now"),
                claim_token=None,
                last_error=None,
            )
        )


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)
