"""Staff's side of a ticket: who has it, whose turn it is (and since when the customer
waits), waiting for the customer until a moment, priority; the queue's views of them;
each change one event, a change to nothing none."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledgerdesk.config import Settings
from ledgerdesk.db.models import Ticket, User
from ledgerdesk.db.prepared import session_db
from ledgerdesk.errors import InvalidParameters, InvalidState
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import NEVER, QueueCursor, QueueFilter, TicketQueries
from ledgerdesk.tickets.service import TicketService, Turn
from tests.events.test_write_paths import events_after, last_id
from tests.factories import make_ticket, make_user
from tests.support import FrozenClock


def row(runtime: Runtime, ticket_id: int) -> Ticket:
    with runtime.transaction(write=False) as (session, _):
        found = session.get(Ticket, ticket_id)
        assert found is not None
        session.expunge(found)
        return found


def as_staff(runtime: Runtime, staff_id: int) -> object:
    return runtime.work(Actor.staff(staff_id), Origin("console"))


def reply(runtime: Runtime, ticket_id: int, author_id: int) -> None:
    with runtime.work(Actor.customer(author_id), Origin("api")) as work:
        author = work.session.get(User, author_id)
        assert author is not None
        TicketService(work).reply(ticket_id, author=author, content="More.", files=[])


def queue(runtime: Runtime, **which: object) -> list[int]:
    with runtime.transaction(write=False) as (session, _):
        rows = TicketQueries(session_db(session)).queue(
            QueueFilter(**which),  # type: ignore[arg-type]
            after=None,
            limit=100,
        )
    return [r.id for r in rows]


def test_whose_turn_follows_who_spoke_last(runtime: Runtime, clock: FrozenClock) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, ann)
    opened = row(runtime, ticket_id)
    assert (opened.turn, opened.customer_said_at) == (Turn.OURS, clock.now)
    clock.advance(600)
    reply(runtime, ticket_id, sam)
    assert row(runtime, ticket_id).turn == Turn.CUSTOMERS
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        author = work.session.get(User, sam)
        TicketService(work).note(ticket_id, author=author, content="Internal.", files=[])
    assert row(runtime, ticket_id).turn == Turn.CUSTOMERS  # a note says nothing to anyone
    clock.advance(600)
    reply(runtime, ticket_id, ann)
    answered = row(runtime, ticket_id)
    assert (answered.turn, answered.customer_said_at) == (Turn.OURS, clock.now)


def test_assigning_and_priority_record_what_changed_and_nothing_else(runtime: Runtime) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, ann)
    before = last_id(runtime)
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        service = TicketService(work)
        service.assign(ticket_id, sam)
        service.assign(ticket_id, sam)  # nothing changes: no event
        service.set_priority(ticket_id, 4)
        service.set_priority(ticket_id, 4)
        service.assign(ticket_id, None)
    events = events_after(runtime, before)
    assert [(e.type, e.payload.get("assigneeId"), e.payload.get("priorityId")) for e in events] == [
        ("ticket.assigned", sam, None),
        ("ticket.priority_changed", None, 4),
        ("ticket.assigned", None, None),
    ]
    assert events[0].payload["previousAssigneeId"] is None
    assert events[1].payload["previousPriorityId"] == 2
    with as_staff(runtime, sam) as work, pytest.raises(InvalidParameters):  # type: ignore[attr-defined]
        TicketService(work).assign(ticket_id, ann)  # a customer is nobody's assignee
    with as_staff(runtime, sam) as work, pytest.raises(InvalidParameters):  # type: ignore[attr-defined]
        TicketService(work).set_priority(ticket_id, 5)


def test_waiting_for_the_customer_ends_when_the_moment_passes_or_they_answer(
    runtime: Runtime, clock: FrozenClock
) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    first = make_ticket(runtime, ann, title="first")
    second = make_ticket(runtime, ann, title="second")
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        service = TicketService(work)
        service.wait_for_customer(first, clock.now + 3600)
        service.wait_for_customer(second, clock.now + 3600)
        with pytest.raises(InvalidParameters):
            service.wait_for_customer(first, clock.now - 1)
    now = clock.now
    assert queue(runtime, turn="ours", now=now) == []
    assert queue(runtime, turn="customers", now=now) == [first, second]
    reply(runtime, second, ann)  # the customer answered: ours again, at once
    assert row(runtime, second).pending_until is None
    assert queue(runtime, turn="ours", now=now) == [second]
    later = now + 3601  # the first's waiting ran out: back in our queue, nothing written
    assert queue(runtime, turn="ours", now=later) == [first, second]
    assert queue(runtime, turn="customers", now=later) == []
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        TicketService(work).close(first, user_id=None)
    with as_staff(runtime, sam) as work, pytest.raises(InvalidState):  # type: ignore[attr-defined]
        TicketService(work).wait_for_customer(first, later + 60)


def test_the_queue_shows_mine_unassigned_and_everyones(runtime: Runtime) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    tess = make_user(runtime, name="Tess", staff=True)
    samples = [make_ticket(runtime, ann, title=f"t{n}") for n in range(3)]
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        TicketService(work).assign(samples[0], sam)
        TicketService(work).assign(samples[1], tess)
    assert queue(runtime, owner="mine", staff_id=sam) == [samples[0]]
    assert queue(runtime, owner="mine", staff_id=tess) == [samples[1]]
    assert queue(runtime, owner="unassigned") == [samples[2]]
    assert queue(runtime) == samples
    with runtime.transaction(write=False) as (session, _):
        rows = TicketQueries(session_db(session)).queue(QueueFilter(), after=None, limit=10)
    assert [r.assignee_name for r in rows] == ["Sam", "Tess", None]


def test_a_ticket_staff_open_for_a_customer_is_the_customers_turn_and_told_them(
    runtime: Runtime,
) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    before = last_id(runtime)
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        author = work.session.get(User, sam)
        ticket = TicketService(work).create(
            customer_id=ann,
            title="Planned maintenance",
            content="Tonight.",
            reference="",
            priority=2,
            files=[],
            author=author,
        )
    made = row(runtime, ticket.id)
    assert (made.turn, made.customer_said_at) == (Turn.CUSTOMERS, None)
    [event] = events_after(runtime, before)
    assert (event.payload["by"], event.payload["authorId"]) == ("staff", sam)
    with runtime.transaction(write=False) as (session, _):
        first = session.scalar(select(User.name).where(User.id == event.payload["authorId"]))
    assert first == "Sam"
    from ledgerdesk.mail.notifications import notices_of

    class Nobody:
        def choices(self) -> list[tuple[int, str]]:
            return []

        def helped(self, staff_id: int, customer_id: int) -> bool:
            return False

    assert [(n.kind, n.recipient_id) for n in notices_of(event, Nobody())] == [  # type: ignore[arg-type]
        ("staff_reply", ann)
    ]


def test_tags_are_kept_lower_case_once_and_the_queue_filters_by_them(runtime: Runtime) -> None:
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    outage = make_ticket(runtime, ann, title="down")
    billing = make_ticket(runtime, ann, title="invoice")
    before = last_id(runtime)
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        service = TicketService(work)
        assert service.set_tags(outage, ["Outage", " outage ", "AMS  rack"]) == [
            "ams rack",
            "outage",
        ]
        assert service.set_tags(outage, ["outage", "ams rack"]) == ["ams rack", "outage"]
        service.set_tags(billing, ["billing"])
        service.set_tags(outage, ["outage"])
        with pytest.raises(InvalidParameters):
            service.set_tags(billing, ["<script>"])
        with pytest.raises(InvalidParameters):
            service.set_tags(billing, [f"t{n}" for n in range(21)])
    events = events_after(runtime, before)
    assert [(e.payload["added"], e.payload["removed"]) for e in events] == [
        (["ams rack", "outage"], []),
        (["billing"], []),
        ([], ["ams rack"]),
    ]
    assert queue(runtime, tag="outage") == [outage]
    assert queue(runtime, tag="billing") == [billing]
    assert queue(runtime, tag="nothing") == []


def test_mail_answering_a_merged_ticket_reaches_the_one_it_was_merged_into(
    runtime: Runtime,
) -> None:
    from ledgerdesk.mail.service import Directory

    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    keep = make_ticket(runtime, ann, title="keep")
    dup = make_ticket(runtime, ann, title="dup")
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        author = work.session.get(User, sam)
        TicketService(work).merge(dup, keep, author=author)
    with runtime.transaction(write=False) as (session, _):
        found = Directory(session).ticket(dup)
    assert found is not None
    assert found.id == keep


def test_the_running_service_level_target_follows_whose_turn_it_is(
    runtime: Runtime, clock: FrozenClock
) -> None:
    levels = runtime.service_levels
    assert levels is not None  # the defaults: mon-fri 09:00-17:00 UTC, 4=30/60 ... 1=1440/2880
    ann = make_user(runtime, name="Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    ticket_id = make_ticket(runtime, ann, priority=4)  # Saturday noon
    opened = clock.now
    assert row(runtime, ticket_id).due_at == levels.due(priority=4, answered=False, since=opened)
    assert row(runtime, ticket_id).due_at == opened + (2 * 86400 - 3 * 3600) + 30 * 60  # Mon 09:30
    clock.advance(3 * 86400)  # Tuesday noon
    reply(runtime, ticket_id, sam)
    assert (row(runtime, ticket_id).due_at, row(runtime, ticket_id).answered_at) == (
        None,
        clock.now,
    )
    clock.advance(600)
    asked = clock.now
    reply(runtime, ticket_id, ann)
    assert row(runtime, ticket_id).due_at == asked + 3600  # the next response: 60 minutes
    clock.advance(300)
    reply(runtime, ticket_id, ann)  # a second message does not restart the clock
    assert row(runtime, ticket_id).due_at == asked + 3600
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        TicketService(work).set_priority(ticket_id, 1)
    assert row(runtime, ticket_id).due_at == levels.due(priority=1, answered=True, since=asked)
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        TicketService(work).wait_for_customer(ticket_id, clock.now + 7200)
    assert row(runtime, ticket_id).due_at == levels.due(
        priority=1, answered=True, since=clock.now + 7200
    )
    with as_staff(runtime, sam) as work:  # type: ignore[attr-defined]
        TicketService(work).close(ticket_id, user_id=None)
    assert row(runtime, ticket_id).due_at is None


def test_the_queue_sorts_by_due_time_and_the_dashboard_counts_the_late(
    runtime: Runtime, clock: FrozenClock
) -> None:
    ann = make_user(runtime, name="Ann")
    low = make_ticket(runtime, ann, title="low", priority=1)
    urgent = make_ticket(runtime, ann, title="urgent", priority=4)
    answered = make_ticket(runtime, ann, title="answered", priority=4)
    reply(runtime, answered, make_user(runtime, name="Sam", staff=True))
    assert queue(runtime, sort="due") == [urgent, low, answered]  # none due last
    more = [make_ticket(runtime, ann, title="more", priority=2) for _ in range(2)]
    for ticket_id in more:
        reply(runtime, ticket_id, make_user(runtime, name="Sam", staff=True))
    # Two at a time, from those due into those without: each once, in order.
    pages, after = [], None
    while True:
        with runtime.transaction(write=False) as (session, _):
            page = TicketQueries(session_db(session)).queue(
                QueueFilter(sort="due"), after=after, limit=2
            )
        if not page:
            break
        pages.append([r.id for r in page])
        last = page[-1]
        after = QueueCursor(
            priority=last.priority, last_updated_at=last.due_at or NEVER, id=last.id
        )
    assert pages == [[urgent, low], [answered, more[0]], [more[1]]]
    with runtime.transaction(write=False) as (session, _):
        queries = TicketQueries(session_db(session))
        assert queries.due_counts(clock.now) == (0, 0)
        urgent_due = row(runtime, urgent).due_at
        assert urgent_due is not None
        assert queries.due_counts(urgent_due - 600) == (0, 1)
        assert queries.due_counts(urgent_due) == (1, 0)


def test_due_times_are_computed_again_when_the_service_levels_change(
    runtime: Runtime, settings: Settings
) -> None:
    from ledgerdesk.app import _due_times

    ann = make_user(runtime, name="Ann")
    ticket_id = make_ticket(runtime, ann, priority=4)
    with runtime.transaction(write=True) as (session, _):  # as a ticket from before 0021
        old = session.get(Ticket, ticket_id)
        assert old is not None
        old.due_at = old.waiting_since = None
    _due_times(runtime)  # the first start after the migration: computed
    computed = row(runtime, ticket_id).due_at
    assert computed is not None
    with runtime.transaction(write=True) as (session, _):
        marked = session.get(Ticket, ticket_id)
        assert marked is not None
        marked.due_at = 1
    _due_times(runtime)  # the same settings: nothing is done again
    assert row(runtime, ticket_id).due_at == 1
    other = Runtime.build(settings.with_overrides(sla="4=5/10"))
    try:
        _due_times(other)  # other targets: every open ticket again
        assert row(other, ticket_id).due_at == other.service_levels.due(  # type: ignore[union-attr]
            priority=4, answered=False, since=row(other, ticket_id).waiting_since or 0
        )
        assert row(other, ticket_id).due_at != computed
    finally:
        other.engine.dispose()
