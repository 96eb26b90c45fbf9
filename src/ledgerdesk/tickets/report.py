"""Response times per week and agent, from the event log (so a past week's figures come
out the same whenever they are asked for, under the same service levels).

A *response* is staff's first public message after a customer's unanswered one on a
ticket: the first response of the ticket (to the message that opened it) or a next one.
It took the business time between the two (``service_levels.Schedule``), is credited to
the staff member who wrote it, in the week (Monday first, in the provider's zone) it was
written, and met its target when that time was within the priority's target then.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ledgerdesk.events.log import EventRecord
from ledgerdesk.service_levels import ServiceLevels

# The event types that say who spoke on a ticket, and its priority.
TYPES = ("ticket.created", "ticket.replied", "ticket.priority_changed", "ticket.merged")


@dataclass(frozen=True)
class WeekRow:
    week: date  # its Monday
    agent_id: int
    responses: int
    first_responses: int
    median_minutes: float  # business minutes
    slowest_minutes: float
    within_target: int  # of the responses with a target


def response_times(events: Iterable[EventRecord], levels: ServiceLevels) -> list[WeekRow]:
    """Per week and agent, oldest week first (``events`` in their order)."""
    waiting: dict[int, int] = {}  # ticket -> when the customer's unanswered message came
    answered: set[int] = set()
    priority: dict[int, int] = {}
    found: dict[tuple[date, int], list[tuple[float, bool, bool | None]]] = defaultdict(list)
    for event in events:
        ticket = event.subject_id
        if ticket is None:
            continue
        data = event.payload
        if event.type == "ticket.priority_changed":
            priority[ticket] = int(data.get("priorityId", 2))
            continue
        if event.type == "ticket.merged":  # the merged ticket's wait goes on here
            merged = int(data.get("mergedTicketId", 0))
            if merged in waiting and ticket not in waiting:
                waiting[ticket] = waiting[merged]
            waiting.pop(merged, None)
            continue
        if event.type == "ticket.created":
            priority[ticket] = int(data.get("priorityId", 2))
        by_staff = data.get("by") == "staff" or (
            event.type == "ticket.created" and event.actor_kind == "staff"
        )
        if not by_staff:
            waiting.setdefault(ticket, event.created_at)
            continue
        since = waiting.pop(ticket, None)
        first = ticket not in answered
        answered.add(ticket)
        if since is None or event.actor_id is None:
            continue  # staff spoke first, or again: nobody was waiting
        minutes = levels.schedule.seconds_between(since, event.created_at) / 60
        target = levels.targets.get(priority.get(ticket, 2))
        met = None if target is None else minutes <= (target[0] if first else target[1])
        week = _monday(event.created_at, levels)
        found[(week, event.actor_id)].append((minutes, first, met))
    rows = []
    for (week, agent), taken in sorted(found.items()):
        times = [t[0] for t in taken]
        rows.append(
            WeekRow(
                week=week,
                agent_id=agent,
                responses=len(taken),
                first_responses=sum(1 for t in taken if t[1]),
                median_minutes=round(statistics.median(times), 1),
                slowest_minutes=round(max(times), 1),
                within_target=sum(1 for t in taken if t[2]),
            )
        )
    return rows


def weeks_back(now: int, weeks: int, levels: ServiceLevels) -> int:
    """The start of the week ``weeks - 1`` weeks before this one (a Unix time)."""
    monday = _monday(now, levels) - timedelta(weeks=weeks - 1)
    zone = levels.schedule.tz
    return int(datetime(monday.year, monday.month, monday.day, tzinfo=zone).timestamp())


def _monday(moment: int, levels: ServiceLevels) -> date:
    day = datetime.fromtimestamp(moment, levels.schedule.tz).date()
    return day - timedelta(days=day.weekday())
