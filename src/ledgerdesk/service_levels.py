"""Service levels: when a ticket's answer falls due, in business hours.

A ``Schedule`` is the provider's working week (``LEDGERDESK_BUSINESS_HOURS``, e.g.
``mon-fri 09:00-17:00`` or ``mon-thu 08:00-12:00,13:00-17:00; fri 08:00-14:00``), its
holidays (``LEDGERDESK_HOLIDAYS``, ISO dates) and its time zone (``LEDGERDESK_TIMEZONE``):
opening hours are wall-clock times of that zone, so a daylight-saving change moves them
with the clock, as an office does. ``ServiceLevels`` adds the targets per priority
(``LEDGERDESK_SLA``, business minutes: ``4=30/60,3=120/240,2=480/960,1=1440/2880``, the
first response and each next one; ``off`` for none).

Pure (beside ``clock``, below everything that uses it): every moment is a Unix time in
seconds; nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = "mon-fri 09:00-17:00"
DEFAULT_TARGETS = "4=30/60,3=120/240,2=480/960,1=1440/2880"
# How far ahead a target is looked for (a schedule of holidays only never ends).
HORIZON_DAYS = 800
_RANGE = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")

Interval = tuple[int, int]  # minutes of the local day: [start, end), end up to 1440


@dataclass(frozen=True)
class Schedule:
    """Opening hours by weekday (0 Monday), holidays, and the zone they are read in."""

    hours: Mapping[int, tuple[Interval, ...]]
    holidays: frozenset[date]
    tz: ZoneInfo

    @classmethod
    def parse(cls, hours: str, holidays: str, tz: ZoneInfo) -> Schedule:
        """The schedule the settings describe; ``ValueError`` says what is wrong."""
        week: dict[int, list[Interval]] = {}
        for part in (p.strip() for p in hours.split(";")):
            if not part:
                continue
            days_text, _, times = part.partition(" ")
            days = _days(days_text.strip().lower())
            ranges = [r.strip() for r in times.split(",") if r.strip()]
            if not ranges:
                raise ValueError(f"{part!r} gives no hours (e.g. mon-fri 09:00-17:00)")
            for text in ranges:
                interval = _interval(text)
                for day in days:
                    week.setdefault(day, []).append(interval)
        if not week:
            raise ValueError("business hours are empty (e.g. mon-fri 09:00-17:00)")
        merged = {day: _merged(intervals) for day, intervals in week.items()}
        off: set[date] = set()
        for text in (h.strip() for h in holidays.split(",")):
            if text:
                try:
                    off.add(date.fromisoformat(text))
                except ValueError:
                    raise ValueError(f"holiday {text!r} is not a date such as 2026-12-25") from None
        return cls(merged, frozenset(off), tz)

    def open_spans(self, day: date) -> list[tuple[int, int]]:
        """The day's opening hours as Unix times [start, end)."""
        if day in self.holidays:
            return []
        spans = []
        for start, end in self.hours.get(day.weekday(), ()):
            spans.append((self._moment(day, start), self._moment(day, end)))
        return [(a, b) for a, b in spans if b > a]

    def add(self, start: int, minutes: int) -> int:
        """The moment ``minutes`` business minutes after ``start`` (``start`` itself, or
        the next opening, for 0)."""
        left = minutes * 60
        for a, b in self._spans_from(start):
            begin = max(a, start)
            if begin + left <= b:
                return begin + left
            left -= b - begin
        raise ValueError(f"no {minutes} business minutes within {HORIZON_DAYS} days")

    def seconds_between(self, first: int, last: int) -> int:
        """Business seconds in [first, last)."""
        total = 0
        for a, b in self._spans_from(first):
            if a >= last:
                break
            total += max(0, min(b, last) - max(a, first))
        return total

    def _spans_from(self, start: int) -> Iterator[tuple[int, int]]:
        """Opening spans ending after ``start``, in order (local days from the day
        before ``start``'s, so that none is missed around a zone change)."""
        day = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        for _ in range(HORIZON_DAYS):
            for a, b in self.open_spans(day):
                if b > start:
                    yield a, b
            day += timedelta(days=1)

    def _moment(self, day: date, minute: int) -> int:
        if minute >= 1440:
            day, minute = day + timedelta(days=1), minute - 1440
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz)
        return int(local.astimezone(UTC).timestamp())


@dataclass(frozen=True)
class ServiceLevels:
    """The schedule and the targets: priority -> (first response, next response) in
    business minutes."""

    schedule: Schedule
    targets: Mapping[int, tuple[int, int]]

    @classmethod
    def parse(cls, schedule: Schedule, targets: str) -> ServiceLevels | None:
        """The service levels the settings describe (None: ``off``)."""
        text = targets.strip().lower()
        if text in ("off", "none", ""):
            return None
        found: dict[int, tuple[int, int]] = {}
        for part in (p.strip() for p in text.split(",")):
            match = re.fullmatch(r"([1-4])=(\d{1,6})/(\d{1,6})", part)
            if match is None:
                raise ValueError(f"{part!r} is not priority=first/next minutes (e.g. 4=30/60)")
            found[int(match.group(1))] = (int(match.group(2)), int(match.group(3)))
        return cls(schedule, found)

    def fingerprint(self) -> str:
        """What the due times computed with these levels depend on, hashed."""
        text = repr(
            (
                sorted(self.schedule.hours.items()),
                sorted(self.schedule.holidays),
                self.schedule.tz.key,
                sorted(self.targets.items()),
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def due(self, *, priority: int, answered: bool, since: int) -> int | None:
        """When the answer to a customer waiting since ``since`` falls due: the first
        response's target until staff answered once, then each next one's (None: no
        target for this priority)."""
        target = self.targets.get(priority)
        if target is None:
            return None
        return self.schedule.add(since, target[1] if answered else target[0])


def _days(text: str) -> list[int]:
    first, dash, last = text.partition("-")
    if first not in DAYS or (dash and last not in DAYS):
        raise ValueError(f"{text!r} is not a day or days such as mon-fri")
    start, end = DAYS.index(first), DAYS.index(last if dash else first)
    if end < start:
        raise ValueError(f"{text!r} runs backwards (e.g. mon-fri)")
    return list(range(start, end + 1))


def _interval(text: str) -> Interval:
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not hours such as 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (h1 < 24 and m1 < 60 and m2 < 60 and end <= 1440 and start < end):
        raise ValueError(f"{text!r} is not hours within a day, the first before the last")
    return start, end


def _merged(intervals: list[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
