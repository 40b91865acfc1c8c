"""Running a campaign's fan-out as a job: chunk after chunk, under a lease that a killed job lets go of."""

from __future__ import annotations

import logging

import redis
from rq import Queue
from sqlalchemy import select

from models.campaigns import Campaign, CampaignStatus
from models.db import Database
from notifications.campaigns.lifecycle import (
    CampaignError,
    complete_finished_campaigns,
    fanout_bounds,
    fanout_chunk,
    start_due_campaigns,
)
from notifications.campaigns.series import run_due_series
from notifications.sms.queues import BULK_QUEUE, DRAIN_JOB_TIMEOUT_SECONDS, FAILURE_TTL_SECONDS, FANOUT_JOB, kick

log = logging.getLogger(__name__)

# Held while a fan-out job for the campaign is queued or running; refreshed after every chunk. A job that dies
# lets it expire, and the sweep starts the fan-out again from the campaign's cursor.
FANOUT_LEASE_KEY = "campaign:fanout:{campaign_id}"
FANOUT_LEASE_SECONDS = 60
# Chunks between two sends-enqueued nudges, so that sending starts while the fan-out goes on.
KICK_EVERY_CHUNKS = 5


def enqueue_fanout(connection: redis.Redis, campaign_id: int) -> bool:
    """Enqueue the fan-out unless one holds the lease; returns whether it was enqueued."""
    if not connection.set(FANOUT_LEASE_KEY.format(campaign_id=campaign_id), 1, nx=True, ex=FANOUT_LEASE_SECONDS):
        return False
    Queue(BULK_QUEUE, connection=connection).enqueue(
        FANOUT_JOB,
        campaign_id,
        job_timeout=DRAIN_JOB_TIMEOUT_SECONDS * 6,
        failure_ttl=FAILURE_TTL_SECONDS,
        result_ttl=0,
    )
    return True


def run_fanout(db: Database, connection: redis.Redis, campaign_id: int) -> int:
    """Fan out until done, cancelled, or another fan-out took over; returns the messages written here."""
    lease = FANOUT_LEASE_KEY.format(campaign_id=campaign_id)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.fanout_done:
            connection.delete(lease)
            return 0
        upper, longest = fanout_bounds(session, campaign)
    written = chunks = 0
    try:
        while True:
            connection.set(lease, 1, ex=FANOUT_LEASE_SECONDS)
            with db.session() as session:
                campaign = session.get(Campaign, campaign_id)
                if campaign.status == CampaignStatus.CANCELLED or campaign.fanout_done:
                    break
                if campaign.fanout_cursor >= upper:
                    campaign.fanout_done = True
                    break
                written += fanout_chunk(session, campaign, upper, longest)
            chunks += 1
            if chunks % KICK_EVERY_CHUNKS == 0:
                kick(connection, "bulk")
    except CampaignError as exc:
        log.warning("fan-out of campaign %s stopped: %s", campaign_id, exc)
    finally:
        connection.delete(lease)
    log.info("fan-out of campaign %s wrote %d messages", campaign_id, written)
    return written


def sweep_campaigns(db: Database, connection: redis.Redis) -> dict[str, int]:
    """Start scheduled campaigns that are due, restart fan-outs that lost their job, and close finished ones."""
    series = run_due_series(db)
    with db.session() as session:
        started = start_due_campaigns(session)
        unfinished = (
            session.execute(
                select(Campaign.id).where(
                    Campaign.status.in_((CampaignStatus.SENDING, CampaignStatus.PAUSED)),
                    Campaign.fanout_done.is_(False),
                )
            )
            .scalars()
            .all()
        )
        completed = complete_finished_campaigns(session)
    enqueued = sum(enqueue_fanout(connection, campaign_id) for campaign_id in unfinished)
    return {
        "campaigns_started": len(started),
        "fanouts_enqueued": enqueued,
        "campaigns_completed": len(completed),
        "series_sent": series,
    }
