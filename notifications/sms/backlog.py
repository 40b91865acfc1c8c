"""What the SMS side owes right now, read from the database and Redis when Prometheus scrapes a web node.

These are facts about the deployment, not about one process, so no process counts them: the web nodes' `/metrics`
reads them at scrape time. The web nodes, not the workers, because the alerts that matter most (transactional SMS
waiting too long, no worker alive) must still fire when every worker is gone. Every web node reports the same
values: rules and panels take `max()` over the nodes.

Each scrape costs a handful of indexed statements and one Redis pipeline: the oldest waiting message per priority
is the first row of the `(status, priority, id)` index, and campaigns are counted only while they send or pause.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import redis
from prometheus_client.core import GaugeMetricFamily
from rq import Queue, Worker
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from models.campaigns import Campaign, CampaignStatus
from models.clock import as_utc, utcnow
from models.db import Database
from models.messages import UNSENT_MESSAGE_STATUSES, MessageGroup, MessagePriority, OutboundMessage
from notifications.campaigns.lifecycle import campaign_progress
from notifications.sms.breaker import BreakerState, CircuitBreaker
from notifications.sms.dispatch import ALERT_CREDENTIALS, ALERT_NO_CREDIT
from notifications.sms.queues import PAUSED_KEY, QUEUE_ORDER

log = logging.getLogger(__name__)

# Campaigns whose progress is worth a series: the ones still moving (a few at a time, so the label stays small).
ACTIVE_CAMPAIGNS = (CampaignStatus.SENDING, CampaignStatus.PAUSED)
PAUSE_REASONS = (ALERT_NO_CREDIT, ALERT_CREDENTIALS)


class BacklogCollector:
    """A prometheus_client collector: `collect()` reads the backlog now. A part that cannot be read is left out and
    `gateway_backlog_read_ok{part}` says so, so a scrape never fails because Redis or the database does."""

    def __init__(self, db: Database, connection: redis.Redis, breakers: Mapping[str, CircuitBreaker]) -> None:
        self.db = db
        self.redis = connection
        self.breakers = breakers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        read_ok = GaugeMetricFamily(
            "gateway_backlog_read_ok", "1 when this scrape could read that part of the backlog", labels=["part"]
        )
        try:
            yield from self._database()
            read_ok.add_metric(["database"], 1)
        except SQLAlchemyError:
            log.warning("metrics: could not read the outbox", exc_info=True)
            read_ok.add_metric(["database"], 0)
        try:
            yield from self._redis()
            read_ok.add_metric(["redis"], 1)
        except redis.RedisError:
            log.warning("metrics: could not read Redis", exc_info=True)
            read_ok.add_metric(["redis"], 0)
        yield read_ok

    def _database(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        waiting = GaugeMetricFamily(
            "gateway_sms_waiting_messages", "SMS not handed to the provider yet, by priority", labels=["priority"]
        )
        oldest = GaugeMetricFamily(
            "gateway_sms_oldest_waiting_seconds",
            "Age of the oldest SMS not handed to the provider yet, by priority (0 when none waits)",
            labels=["priority"],
        )
        campaigns = GaugeMetricFamily("gateway_campaigns", "Campaigns by status", labels=["status"])
        progress = GaugeMetricFamily(
            "gateway_campaign_messages",
            "Messages of each sending or paused campaign, by where they stand",
            labels=["campaign", "group"],
        )
        with self.db.session() as session:
            for priority in MessagePriority:
                unsent = (OutboundMessage.status.in_(UNSENT_MESSAGE_STATUSES), OutboundMessage.priority == priority)
                count = session.scalar(select(func.count()).select_from(OutboundMessage).where(*unsent))
                first = session.scalar(
                    select(OutboundMessage.created_at).where(*unsent).order_by(OutboundMessage.id).limit(1)
                )
                waiting.add_metric([priority], count or 0)
                oldest.add_metric([priority], _age_seconds(now, first))
            by_status = dict(session.execute(select(Campaign.status, func.count()).group_by(Campaign.status)).all())
            for status in CampaignStatus:
                campaigns.add_metric([status], by_status.get(status, 0))
            active = session.execute(select(Campaign).where(Campaign.status.in_(ACTIVE_CAMPAIGNS))).scalars()
            for campaign in active:
                counts = campaign_progress(session, campaign)
                for group in MessageGroup:
                    progress.add_metric([str(campaign.id), group], getattr(counts, group))
        yield from (waiting, oldest, campaigns, progress)

    def _redis(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("gateway_rq_queued_jobs", "Jobs waiting in each RQ queue", labels=["queue"])
        for name in QUEUE_ORDER:
            jobs.add_metric([name], Queue(name, connection=self.redis).count)
        workers = GaugeMetricFamily("gateway_rq_workers", "RQ workers registered and heartbeating in Redis")
        workers.add_metric([], Worker.count(connection=self.redis))
        paused = self.redis.get(PAUSED_KEY)
        paused = paused.decode() if isinstance(paused, bytes) else paused
        pause = GaugeMetricFamily(
            "gateway_sms_sending_paused", "1 while all SMS sending is paused, by reason", labels=["reason"]
        )
        for reason in PAUSE_REASONS:
            pause.add_metric([reason], 1 if paused == reason else 0)
        breaker = GaugeMetricFamily(
            "gateway_sms_breaker_open",
            "1 while a route's breaker holds calls back (open or probing)",
            labels=["route"],
        )
        failures = GaugeMetricFamily(
            "gateway_sms_breaker_failures", "Consecutive provider-wide failures of a route", labels=["route"]
        )
        for route, route_breaker in self.breakers.items():
            status = route_breaker.status()
            breaker.add_metric([route], 0 if status.state == BreakerState.CLOSED else 1)
            failures.add_metric([route], status.failures)
        yield from (jobs, workers, pause, breaker, failures)


def _age_seconds(now, created) -> float:
    return 0.0 if created is None else max((now - as_utc(created)).total_seconds(), 0.0)
