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


def moment_of(text: str, tz: ZoneInfo) -> int:
    """Unix seconds of an ISO 8601 date or date and time (2026-11-30, 2026-11-30T12:00,
    with or without an offset; without one, in ``tz``). ValueError says what is wrong."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date and time such as 2026-11-30T12:00 or 2026-11-30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())
