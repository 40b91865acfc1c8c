"""What a worker process needs to send SMS, built from the environment without Flask."""

from __future__ import annotations

from functools import cached_property

import redis

from config import Settings, load_settings
from config.redis import connect
from config.settings import default_database_url
from models.db import Database
from notifications.sms.dispatch import Dispatcher
from notifications.sms.providers.africastalking import AfricasTalkingProvider


class Runtime:
    """Settings, database, Redis, provider and dispatcher of one process, each made on first use."""

    def __init__(self, settings: Settings):
        if not settings.database_url:
            settings = settings.replace(database_url=default_database_url())
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL must be set for SMS workers (`flask --app wsgi worker` sets it)")
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.redis_url)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        provider = AfricasTalkingProvider.from_settings(self.settings)
        return Dispatcher(settings=self.settings, db=self.db, redis=self.redis, provider=provider)


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, from the environment (RQ jobs run in a fresh work-horse process)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def set_runtime(runtime: Runtime) -> None:
    """Make `runtime` the process's own (the worker sets it once, before it runs any job)."""
    global _runtime
    _runtime = runtime
