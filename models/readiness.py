"""Is this process ready for traffic: the database answers at the schema this code expects, and Redis answers.

A load balancer asks this every few seconds of every node (`GET /readyz`), so each check is one short statement or
one PING, and a hung Redis costs one socket timeout (`config.redis`), never the balancer's whole check interval.
"""

from __future__ import annotations

import logging

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config.redis import round_trip
from models.db import Database
from models.migrate import database_revisions

log = logging.getLogger(__name__)

# The parts a readiness answer names, in the order it names them.
DATABASE = "database"
MIGRATIONS = "migrations"
REDIS = "redis"
# What each part is said to be: ready, or what went wrong (in words that reveal no version, host or data).
OK = "ok"
UNREACHABLE = "unreachable"
NOT_AT_HEAD = "not at head"


def readiness(database: Database, client: redis.Redis, heads: frozenset[str]) -> dict[str, str]:
    """`{part: OK or what is wrong}` for the database, its migrations (against `heads`, read once at start-up) and
    Redis. The reasons go to the log (they may name hosts); the answer names only the part."""
    parts = {DATABASE: OK, MIGRATIONS: OK, REDIS: OK}
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            if database_revisions(connection) != heads:
                parts[MIGRATIONS] = NOT_AT_HEAD
    except SQLAlchemyError as exc:
        log.warning("readiness: the database does not answer: %s", exc.__class__.__name__)
        parts[DATABASE] = parts[MIGRATIONS] = UNREACHABLE
    try:
        round_trip(client, ("PING",))
    except redis.RedisError as exc:
        log.warning("readiness: Redis does not answer: %s", exc.__class__.__name__)
        parts[REDIS] = UNREACHABLE
    return parts
