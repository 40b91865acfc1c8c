"""Logging with context: every line inside a USSD hop or an SMS job carries its session, job or message id.

Phone numbers and national IDs never go into a log line whole; log `models.phone.mask_phone(...)` instead.
`LOG_FORMAT=json` writes the same lines as one JSON object each, the context as fields, for a log shipper.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"
# The values of the LOG_FORMAT setting.
TEXT = "text"
JSON = "json"
LOG_FORMATS = (TEXT, JSON)
# The fields every JSON line has; the context's keys follow them, and never replace one.
JSON_FIELDS = ("time", "level", "logger", "message")


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
        record.context_fields = _context.get()
        record.context = " ".join(f"{key}={value}" for key, value in record.context_fields.items()) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context fields, and the
    exception's traceback as `exception` when there is one. The message is the same text the text format writes,
    so whatever a caller masked stays masked."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "context_fields", {}).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - overrides
        stamp = datetime.fromtimestamp(record.created, UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter(log_format: str = TEXT) -> logging.Formatter:
    """The formatter for a LOG_FORMAT value."""
    return JsonFormatter() if log_format == JSON else logging.Formatter(LOG_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = TEXT) -> None:
    """Install one stderr handler with the context filter on the root logger (once per process)."""
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for handler in root.handlers for f in handler.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
