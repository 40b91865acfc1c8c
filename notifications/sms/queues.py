"""The gateway's RQ queues and the Redis keys the SMS side keeps, named once.

Transactional messages (confirmations, grant and payment notices) have their own queue, which workers take before
the bulk queue: a payment notice never waits behind a campaign.
"""

from __future__ import annotations

import logging

import redis
from rq import Queue

from models.messages import MessagePriority

log = logging.getLogger(__name__)

TRANSACTIONAL_QUEUE = "sms-transactional"
BULK_QUEUE = "sms-bulk"
QUEUE_FOR_PRIORITY = {MessagePriority.TRANSACTIONAL: TRANSACTIONAL_QUEUE, MessagePriority.BULK: BULK_QUEUE}
# Workers listen in this order, so transactional jobs run first.
QUEUE_ORDER = (TRANSACTIONAL_QUEUE, BULK_QUEUE)

# Set while a drain job for a priority is queued or starting, so that a burst of commits enqueues one job.
KICK_KEY = "sms:kick:{priority}"
# A kick flag outlives a lost job by at most this long; then the sweep enqueues again.
KICK_TTL_SECONDS = 60
# Set while sending is paused (out of credit, credentials refused); expires by itself to probe again.
PAUSED_KEY = "sms:paused"
# The provider-wide token bucket of the send rate limit.
RATE_KEY = "sms:rate"

# The jobs, by dotted path: RQ imports them in the worker, so enqueueing needs no import of the job modules (which
# themselves enqueue, through this module).
DRAIN_JOB = "notifications.sms.jobs.drain_outbox"
FANOUT_JOB = "notifications.sms.jobs.fan_out_campaign"

# Longest a drain job may run; each job sends a slice and re-enqueues itself.
DRAIN_JOB_TIMEOUT_SECONDS = 600
# Failed jobs stay visible this long for operators (`rq info`); the outbox rows are the real record.
FAILURE_TTL_SECONDS = 7 * 86400


def queues(connection: redis.Redis) -> list[Queue]:
    """The gateway's queues in the order workers take them."""
    return [Queue(name, connection=connection) for name in QUEUE_ORDER]


def kick(connection: redis.Redis, priority: MessagePriority | str) -> bool:
    """Make sure a drain job for `priority` will run soon; returns whether one was enqueued.

    Called after a commit that added messages. If Redis is down the messages wait in the table, and the worker's
    periodic sweep enqueues them later: a failed kick delays, it never loses.
    """
    priority = MessagePriority(priority)
    try:
        if not connection.set(KICK_KEY.format(priority=priority), 1, nx=True, ex=KICK_TTL_SECONDS):
            return False
        Queue(QUEUE_FOR_PRIORITY[priority], connection=connection).enqueue(
            DRAIN_JOB,
            str(priority),
            job_timeout=DRAIN_JOB_TIMEOUT_SECONDS,
            failure_ttl=FAILURE_TTL_SECONDS,
            result_ttl=0,
        )
        return True
    except redis.RedisError:
        log.warning("could not enqueue the %s drain job; the sweep will", priority, exc_info=True)
        return False
