"""Response times per week and agent, computed from the event log by hand-checkable
cases: business minutes only, first and next responses, credited to who answered, in
the week they answered, against the priority's target at the time."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from ledgerdesk.events.log import EventRecord
from ledgerdesk.service_levels import Schedule, ServiceLevels
from ledgerdesk.tickets.report import WeekRow, response_times

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LEVELS = ServiceLevels.parse(
    Schedule.parse("mon-fri 09:00-17:00", "", AMSTERDAM), "4=30/60,2=480/960"
)
SAM, TESS, ANN = 10, 11, 7


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=AMSTERDAM).timestamp())


def event(
    kind: str, ticket: int, when: str, actor: int, actor_kind: str, **data: object
) -> EventRecord:
    return EventRecord(
        id=0,
        type=kind,
        created_at=at(when),
        door="api",
        actor_kind=actor_kind,  # type: ignore[arg-type]
        actor_id=actor,
        key_id=None,
        customer_id=ANN,
        subject_id=ticket,
        payload=dict(data),
        client_address=None,
        request_id=None,
    )


def opened(ticket: int, when: str, *, priority: int) -> EventRecord:
    return event(
        "ticket.created", ticket, when, ANN, "customer", priorityId=priority, by="customer"
    )


def test_business_minutes_first_and_next_per_week_and_agent() -> None:
    assert LEVELS is not None
    events = [
        # Friday 16:50, priority 4: Sam answers Monday 09:15 (10 + 15 = 25 min: met, 30).
        event(
            "ticket.created", 1, "2026-11-27T16:50", ANN, "customer", priorityId=4, by="customer"
        ),
        event("ticket.replied", 1, "2026-11-30T09:15", SAM, "staff", by="staff"),
        # Ann twice, then Tess an hour and a half later: the next response, 90 min, missed.
        event("ticket.replied", 1, "2026-11-30T10:00", ANN, "customer", by="customer"),
        event("ticket.replied", 1, "2026-11-30T10:20", ANN, "customer", by="customer"),
        event("ticket.replied", 1, "2026-11-30T11:30", TESS, "staff", by="staff"),
        # Staff again with nobody waiting: no response.
        event("ticket.replied", 1, "2026-11-30T11:40", TESS, "staff", by="staff"),
        # Priority 2 (target 480): Sam after 2 h, met; but priority changed to 4 first.
        event(
            "ticket.created", 2, "2026-12-01T09:00", ANN, "customer", priorityId=2, by="customer"
        ),
        event("ticket.priority_changed", 2, "2026-12-01T09:05", SAM, "staff", priorityId=4),
        event("ticket.replied", 2, "2026-12-01T11:00", SAM, "staff", by="staff"),
        # Next week: Sam, 20 min.
        event("ticket.replied", 2, "2026-12-07T09:00", ANN, "customer", by="customer"),
        event("ticket.replied", 2, "2026-12-07T09:20", SAM, "staff", by="staff"),
    ]
    assert response_times(events, LEVELS) == [
        WeekRow(date(2026, 11, 30), SAM, 2, 2, 72.5, 120.0, 1),
        WeekRow(date(2026, 11, 30), TESS, 1, 0, 90.0, 90.0, 0),
        WeekRow(date(2026, 12, 7), SAM, 1, 0, 20.0, 20.0, 1),
    ]
