"""Logging with context: every line inside a USSD hop or an SMS job carries its session, job or message id.

Phone numbers and national IDs never go into a log line whole; log `models.phone.mask_phone(...)` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"


@contextmanager
def log_context(**values) -> Iterator[None]:
    """Add `key=value` pairs to every log line written inside the block (nested blocks add to the outer ones)."""
    token = _context.set({**_context.get(), **{key: str(value) for key, value in values.items()}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = " ".join(f"{key}={value}" for key, value in _context.get().items()) or "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Install one stderr handler with the context filter on the root logger (once per process)."""
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for handler in root.handlers for f in handler.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
