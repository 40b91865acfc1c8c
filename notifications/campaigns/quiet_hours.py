"""Quiet hours: no bulk SMS at night, in Lesotho time, whatever the server's clock zone."""

from __future__ import annotations

from datetime import datetime, time

from models.clock import lesotho_time


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(moment: datetime, quiet_hours: tuple[str, str] | None) -> bool:
    """True when `moment` falls in the `(start, end)` window, Africa/Maseru; a window may cross midnight."""
    if not quiet_hours:
        return False
    start, end = (_clock(part) for part in quiet_hours)
    local = lesotho_time(moment).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end
