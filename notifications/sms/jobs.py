"""RQ jobs: top-level functions that take ids and names, never ORM objects."""

from __future__ import annotations

import logging

from rq import get_current_job

from config.logging import log_context
from models.messages import MessagePriority
from notifications.campaigns.fanout import run_fanout
from notifications.sms.queues import KICK_KEY, kick
from notifications.sms.runtime import get_runtime

log = logging.getLogger(__name__)

# Seconds one drain job sends before it re-enqueues itself, so that a long bulk send lets transactional jobs
# (taken first by every worker) in between.
DRAIN_SLICE_SECONDS = 5.0


def drain_outbox(priority: str) -> int:
    """Send due messages of `priority` for one slice; re-enqueue if more are due. Returns messages handled."""
    runtime = get_runtime()
    job = get_current_job()
    with log_context(job=job.id if job else "-", priority=priority):
        # Cleared first: a commit from now on enqueues a new job, so nothing can slip past this one's last look.
        runtime.redis.delete(KICK_KEY.format(priority=priority))
        handled, more = runtime.dispatcher.drain(MessagePriority(priority), time_budget=DRAIN_SLICE_SECONDS)
        if more:
            kick(runtime.redis, priority)
        log.info("drained %d %s messages%s", handled, priority, "; more due" if more else "")
        return handled


def fan_out_campaign(campaign_id: int) -> int:
    """Write a campaign's messages chunk by chunk, then enqueue their sending. Safe to run again after a kill."""
    runtime = get_runtime()
    job = get_current_job()
    with log_context(job=job.id if job else "-", campaign=campaign_id):
        written = run_fanout(runtime.db, runtime.redis, campaign_id)
        kick(runtime.redis, MessagePriority.BULK)
        return written
