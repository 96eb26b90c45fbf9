"""Service levels in business hours, against a hand-computed schedule: a minute-by-minute
walk of the local clock (weekends, holidays, lunch breaks, the daylight-saving changes
of Europe/Amsterdam and America/New_York), checked by property tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerdesk.service_levels import Schedule, ServiceLevels

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")
HOURS = "mon-thu 09:00-12:00,13:00-17:30; fri 09:00-15:00; sat 10:00-12:00"
HOLIDAYS = "2026-12-25,2026-12-26,2027-01-01,2026-04-03"


def walked(schedule: Schedule, start: int, minutes: int) -> int:
    """The reference: step the clock a minute at a time, counting the minutes that fall
    in opening hours of the local day (as a person with a calendar would)."""
    moment = start
    counted = 0
    while True:
        local = datetime.fromtimestamp(moment, schedule.tz)
        minute = local.hour * 60 + local.minute
        open_now = local.date() not in schedule.holidays and any(
            a <= minute < b for a, b in schedule.hours.get(local.weekday(), ())
        )
        if counted == minutes * 60 and open_now:
            return moment
        step = 60 - local.second if local.second else 60
        if open_now:
            taken = min(step, minutes * 60 - counted)
            if taken == 0:
                return moment
            counted += taken
            moment += taken
            if counted == minutes * 60:
                return moment
        else:
            moment += step


# Moments around both daylight-saving changes of 2026 and the year's end.
MOMENTS = st.sampled_from(
    [
        datetime(2026, 3, 26, tzinfo=UTC),
        datetime(2026, 3, 6, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 10, 22, tzinfo=UTC),
        datetime(2026, 10, 29, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 23, tzinfo=UTC),
    ]
).flatmap(
    lambda base: st.integers(0, 6 * 24 * 60).map(
        lambda m: int((base + timedelta(minutes=m)).timestamp()) + (m * 7) % 60
    )
)


@settings(max_examples=150, deadline=None)
@given(start=MOMENTS, minutes=st.integers(0, 1500), zone=st.sampled_from([AMSTERDAM, NEW_YORK]))
def test_a_target_falls_due_where_the_calendar_walk_says(
    start: int, minutes: int, zone: ZoneInfo
) -> None:
    schedule = Schedule.parse(HOURS, HOLIDAYS, zone)
    due = schedule.add(start, minutes)
    assert due == walked(schedule, start, minutes)
    assert schedule.seconds_between(start, due) == minutes * 60


@settings(max_examples=100, deadline=None)
@given(first=MOMENTS, later=st.integers(0, 3 * 86400), minutes=st.integers(0, 600))
def test_a_later_start_is_never_due_sooner(first: int, later: int, minutes: int) -> None:
    schedule = Schedule.parse(HOURS, HOLIDAYS, AMSTERDAM)
    assert schedule.add(first, minutes) <= schedule.add(first + later, minutes)


def at(text: str, zone: ZoneInfo = AMSTERDAM) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=zone).timestamp())


def test_hand_computed_cases() -> None:
    schedule = Schedule.parse(HOURS, HOLIDAYS, AMSTERDAM)
    # Friday 14:30 + 60 min: 30 min on Friday, Saturday 10:00-10:30.
    assert schedule.add(at("2026-11-27T14:30"), 60) == at("2026-11-28T10:30")
    # Across lunch: Monday 11:30 + 60 min is 13:30.
    assert schedule.add(at("2026-11-30T11:30"), 60) == at("2026-11-30T13:30")
    # Christmas (Friday) and Boxing Day (Saturday) are holidays: Thursday 17:30 (closing)
    # + 1 min is Monday 09:01.
    assert schedule.add(at("2026-12-24T17:30"), 1) == at("2026-12-28T09:01")
    # Summer time starts Sunday 2026-03-29: Saturday 11:00 + 3 h (an hour on Saturday,
    # two on Monday) is Monday 11:00 by the clock on the wall, 47 h later, not 48.
    due = schedule.add(at("2026-03-28T11:00"), 180)
    assert due == at("2026-03-30T11:00")
    assert due - at("2026-03-28T11:00") == 47 * 3600
    assert schedule.add(0 + at("2026-11-30T09:00"), 0) == at("2026-11-30T09:00")
    assert schedule.add(at("2026-11-29T20:00"), 0) == at("2026-11-30T09:00")


def test_targets_by_priority_first_and_next() -> None:
    levels = ServiceLevels.parse(
        Schedule.parse("mon-fri 09:00-17:00", "", AMSTERDAM), "4=30/60,2=480/960"
    )
    assert levels is not None
    since = at("2026-11-30T16:45")
    assert levels.due(priority=4, answered=False, since=since) == at("2026-12-01T09:15")
    assert levels.due(priority=4, answered=True, since=since) == at("2026-12-01T09:45")
    assert levels.due(priority=3, answered=False, since=since) is None
    assert ServiceLevels.parse(Schedule.parse("mon 09:00-10:00", "", AMSTERDAM), "off") is None


@pytest.mark.parametrize(
    ("hours", "holidays", "why"),
    [
        ("", "", "empty"),
        ("weekdays 09:00-17:00", "", "not a day"),
        ("fri-mon 09:00-17:00", "", "backwards"),
        ("mon 17:00-09:00", "", "first before the last"),
        ("mon 09:00-25:00", "", "within a day"),
        ("mon nine-five", "", "not hours"),
        ("mon 09:00-17:00", "christmas", "not a date"),
    ],
)
def test_nonsense_is_refused_with_why(hours: str, holidays: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Schedule.parse(hours, holidays, AMSTERDAM)


def test_targets_nonsense_is_refused() -> None:
    schedule = Schedule.parse("mon 09:00-17:00", "", AMSTERDAM)
    with pytest.raises(ValueError, match="priority=first/next"):
        ServiceLevels.parse(schedule, "urgent=5m")


def test_a_schedule_of_holidays_only_says_so() -> None:
    schedule = Schedule.parse("mon 09:00-10:00", "", AMSTERDAM)
    every_monday = ",".join(str(date(2026, 11, 30) + timedelta(weeks=w)) for w in range(-2, 130))
    closed = Schedule.parse("mon 09:00-10:00", every_monday, AMSTERDAM)
    assert schedule.add(at("2026-11-30T09:00"), 30) == at("2026-11-30T09:30")
    with pytest.raises(ValueError, match="business minutes within"):
        closed.add(at("2026-11-30T09:00"), 30)
