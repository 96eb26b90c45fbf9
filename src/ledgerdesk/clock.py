"""The clock is an edge: tests replace it, nothing else reads the time directly."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def timestamp(self) -> int:
        """Unix seconds now."""
        ...


class SystemClock:
    def timestamp(self) -> int:
        return int(time.time())


def day_of(timestamp: int, tz: ZoneInfo) -> date:
    """The calendar date at ``timestamp`` in the time zone ``tz``."""
    return datetime.fromtimestamp(timestamp, tz=UTC).astimezone(tz).date()


def today(clock: Clock, tz: ZoneInfo) -> date:
    """The calendar date now in the time zone ``tz``."""
    return day_of(clock.timestamp(), tz)
