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


def today(clock: Clock, tz: ZoneInfo) -> date:
    """The calendar date now in the configured time zone."""
    return datetime.fromtimestamp(clock.timestamp(), tz=UTC).astimezone(tz).date()
