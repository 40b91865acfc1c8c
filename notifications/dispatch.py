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
within `SMS_UNKNOWN_OUTCOME_SECONDS`, the message is marked failed with `OutcomeUnknown` and staff are alerted;
it is not re-sent on its own, because a message the provider may have accepted must not be sent twice. An operator
can re-send it with `flask --app wsgi sms retry-failed`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from config import Settings
from config.logging import log_context
from models.base import as_utc, utcnow
from models.campaigns import Campaign, CampaignStatus
from models.db import Database
from models.messages import (
    DeliveryReport,
    MessagePriority,
    MessageStatus,
    OutboundMessage,
    SystemAlert,
)
from models.phone import mask_phone
from notifications.delivery import REPORT_STATUSES, apply_kept_reports, apply_status
from notifications.fanout import sweep_campaigns
from notifications.provider import (
    Outcome,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientResult,
    SmsProvider,
)
from notifications.queues import PAUSED_KEY, RATE_KEY, kick
from notifications.quiet_hours import in_quiet_hours
from notifications.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# The failure reason of a message whose provider call outcome was never learnt.
OUTCOME_UNKNOWN = "OutcomeUnknown"
ALERT_NO_CREDIT = "sms_no_credit"
ALERT_CREDENTIALS = "sms_credentials"
ALERT_OUTCOME_UNKNOWN = "sms_outcome_unknown"


@dataclass
class Dispatcher:
    settings: Settings
    db: Database
    redis: redis.Redis
    provider: SmsProvider
    sleep: Callable[[float], None] = time.sleep
    limiter: RateLimiter = field(init=False)
    # Checked before each bulk batch; transactional messages are never held. Default: outside quiet hours.
    bulk_allowed: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.redis, RATE_KEY, self.settings.sms_rate_per_second)
        if self.bulk_allowed is None:
            self.bulk_allowed = lambda: not in_quiet_hours(utcnow(), self.settings.quiet_hours)

    # -- sending ------------------------------------------------------------------------------------------------

    def drain(self, priority: MessagePriority | str, time_budget: float | None = None) -> tuple[int, bool]:
        """Send batches until nothing is due or `time_budget` seconds pass; returns (messages, more_left)."""
        started = time.monotonic()
        handled = 0
        while True:
            count = self.send_next_batch(priority)
            if count == 0:
                return handled, False
            handled += count
            if time_budget is not None and time.monotonic() - started > time_budget:
                return handled, True

    def send_next_batch(self, priority: MessagePriority | str) -> int:
        """Claim and send one batch of messages with the same text; returns how many rows it handled (0: none due)."""
        priority = MessagePriority(priority)
        if self.paused() or (priority == MessagePriority.BULK and not self.bulk_allowed()):
            return 0
        with self.db.session() as session:
            body, candidates = self._next_batch(session, priority)
        if not candidates:
            return 0
        self.sleep(self.limiter.reserve(len(candidates)))
        token = uuid.uuid4().hex
        with self.db.session() as session:
            claimed = self._claim(session, [message_id for message_id, _ in candidates], token)
        self.limiter.refund(len(candidates) - len(claimed))
        if not claimed:
            return len(candidates)  # another worker took them; look again
        with log_context(claim=token[:8]):
            self._send(body, claimed, token)
        return len(claimed)

    def paused(self) -> bool:
        return bool(self.redis.exists(PAUSED_KEY))

    def _due(self, priority: MessagePriority):
        due = and_(
            OutboundMessage.status == MessageStatus.QUEUED,
            OutboundMessage.priority == priority,
            or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= utcnow()),
        )
        if priority != MessagePriority.BULK:
            return due
        # A paused or cancelled campaign's messages wait (or were withdrawn): checked on every batch, so a pause
        # takes effect within one batch.
        sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
        return and_(due, or_(OutboundMessage.campaign_id.is_(None), OutboundMessage.campaign_id.in_(sending)))

    def _next_batch(self, session: Session, priority: MessagePriority) -> tuple[str, list[tuple[int, str]]]:
        """The oldest due message's text, and up to SMS_BATCH_SIZE due messages to distinct numbers with it."""
        body = session.execute(
            select(OutboundMessage.body).where(self._due(priority)).order_by(OutboundMessage.id).limit(1)
        ).scalar_one_or_none()
        if body is None:
            return "", []
        rows = session.execute(
            select(OutboundMessage.id, OutboundMessage.phone)
            .where(self._due(priority), OutboundMessage.body == body)
            .order_by(OutboundMessage.id)
            .limit(self.settings.sms_batch_size * 2)
        ).all()
        batch: dict[str, int] = {}
        for message_id, phone in rows:
            # One provider call answers once per number, so a number appears once per batch.
            if phone not in batch and len(batch) < self.settings.sms_batch_size:
                batch[phone] = message_id
        return body, [(message_id, phone) for phone, message_id in batch.items()]

    def _claim(self, session: Session, ids: list[int], token: str) -> list[tuple[int, str]]:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(ids), OutboundMessage.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.SUBMITTING,
                claim_token=token,
                claimed_at=utcnow(),
                attempts=OutboundMessage.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return list(
            session.execute(
                select(OutboundMessage.id, OutboundMessage.phone).where(OutboundMessage.claim_token == token)
            ).all()
        )

    def _send(self, body: str, claimed: list[tuple[int, str]], token: str) -> None:
        phones = [phone for _, phone in claimed]
        try:
            results = self.provider.send(body, phones)
        except ProviderUnavailableError as exc:
            if exc.outcome_unknown:
                # The request may have reached the provider: leave the rows for the sweep to settle.
                log.warning("provider answer lost for %d messages (%s); settling by delivery report", len(phones), exc)
                with self.db.session() as session:
                    session.execute(
                        update(OutboundMessage)
                        .where(OutboundMessage.claim_token == token)
                        .values(last_error=str(exc)[:500])
                        .execution_options(synchronize_session=False)
                    )
                return
            log.warning("provider unavailable for %d messages: %s", len(phones), exc)
            results = [RecipientResult.retry(phone, str(exc)) for phone in phones]
        except ProviderRejectedError as exc:
            log.error("provider refused the call (%s); pausing sending", exc)
            self._pause(
                ALERT_CREDENTIALS, f"The SMS provider refused our requests: {exc}. Check AT_USERNAME/AT_API_KEY."
            )
            results = [RecipientResult.no_credit(phone, str(exc)) for phone in phones]
        self._record(token, results)

    def _record(self, token: str, results: list[RecipientResult]) -> None:
        by_phone = {result.phone: result for result in results}
        now = utcnow()
        accepted: list[OutboundMessage] = []
        no_credit = False
        with self.db.session() as session:
            messages = session.execute(
                select(OutboundMessage).where(
                    OutboundMessage.claim_token == token, OutboundMessage.status == MessageStatus.SUBMITTING
                )
            ).scalars()
            for message in messages:
                result = by_phone.get(message.phone) or RecipientResult.retry(message.phone, "missing from answer")
                message.claim_token = None
                if result.outcome == Outcome.ACCEPTED:
                    message.status = MessageStatus.SUBMITTED
                    message.provider_message_id = result.message_id
                    message.cost = result.cost
                    message.parts = result.parts or message.parts
                    message.submitted_at = now
                    message.last_error = None
                    accepted.append(message)
                elif result.outcome == Outcome.PERMANENT:
                    message.status = MessageStatus.REJECTED
                    message.failure_reason = result.status[:64]
                    message.last_error = result.error
                    message.final_at = now
                    log.info("message %s to %s refused: %s", message.id, mask_phone(message.phone), result.status)
                elif result.outcome == Outcome.NO_CREDIT:
                    no_credit = True
                    message.status = MessageStatus.QUEUED
                    message.attempts = max(message.attempts - 1, 0)  # not the message's fault
                    message.last_error = result.error
                else:
                    self._retry_later(message, result.error or result.status, now)
            session.flush()
            apply_kept_reports(session, accepted)
        if no_credit:
            self._pause(ALERT_NO_CREDIT, "The SMS account is out of credit: sending is paused. Top up the account.")

    def _retry_later(self, message: OutboundMessage, error: str, now: datetime) -> None:
        backoff = self.settings.sms_retry_backoff_seconds
        message.last_error = error[:500]
        if message.attempts > len(backoff):
            message.status = MessageStatus.FAILED
            message.failure_reason = "RetriesExhausted"
            message.final_at = now
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

    # -- the sweep ----------------------------------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Settle messages whose worker died mid-call, move campaigns along, and enqueue drain jobs for anything
        due. Run periodically: this is also what ends quiet hours and starts scheduled campaigns."""
        settled = self._settle_stuck()
        campaigns = sweep_campaigns(self.db, self.redis)
        kicked = 0
        with self.db.session() as session:
            for priority in MessagePriority:
                due = session.execute(select(OutboundMessage.id).where(self._due(priority)).limit(1)).first()
                if due is not None and kick(self.redis, priority):
                    kicked += 1
        return {"settled": settled, "kicked": kicked, **campaigns}

    def _settle_stuck(self) -> int:
        now = utcnow()
        claim_cutoff = now - timedelta(seconds=self.settings.sms_claim_timeout_seconds)
        unknown_cutoff = now - timedelta(seconds=self.settings.sms_unknown_outcome_seconds)
        settled = 0
        with self.db.session() as session:
            stuck = session.execute(
                select(OutboundMessage)
                .where(OutboundMessage.status == MessageStatus.SUBMITTING, OutboundMessage.claimed_at < claim_cutoff)
                .order_by(OutboundMessage.id)
            ).scalars()
            for message in stuck:
                report = self._unclaimed_report_for(session, message)
                if report is not None:
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
                    message.status = MessageStatus.FAILED
                    message.failure_reason = OUTCOME_UNKNOWN
                    message.final_at = now
                    message.claim_token = None
                    session.add(
                        SystemAlert(
                            kind=ALERT_OUTCOME_UNKNOWN,
                            text=f"SMS {message.id} may or may not have been sent (worker stopped mid-call). "
                            "Check with the recipient; `flask --app wsgi sms retry-failed` re-sends it.",
                        )
                    )
                    log.error("message %s outcome unknown; marked failed and alerted", message.id)
                    settled += 1
        return settled

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
