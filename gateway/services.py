"""The services one app uses: settings, database, Redis and the USSD engine, built once per process.

Redis is resolved on first use, so that commands which never touch it (`db upgrade`) do not start an embedded one.
"""

from __future__ import annotations

from functools import cached_property

import redis
from flask import Flask, current_app

from config import Settings
from config.redis import connect, ensure_embedded_redis, warn_if_evicting
from config.settings import default_database_url
from menus import UssdEngine
from models import Database
from models.crypto import install_data_keys, keys_of
from notifications.sms.number_limits import NumberLimits


class Services:
    def __init__(self, settings: Settings):
        if not settings.database_url:
            settings = settings.replace(database_url=default_database_url())
        self.settings = settings
        install_data_keys(keys_of(settings))  # a bad key stops the start here, not at the first registration
        self.db = Database(settings.database_url)

    @cached_property
    def redis_url(self) -> str:
        return self.settings.redis_url or ensure_embedded_redis()

    @cached_property
    def redis(self) -> redis.Redis:
        """The process's client, built on first use; that is when the server's eviction policy is checked."""
        client = connect(self.redis_url)
        warn_if_evicting(client)
        return client

    @cached_property
    def limits(self) -> NumberLimits:
        return NumberLimits(self.redis, self.settings)

    @cached_property
    def ussd(self) -> UssdEngine:
        return UssdEngine(settings=self.settings, database=self.db, redis=self.redis)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["gateway"] = Services(settings)


def get_services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["gateway"]
