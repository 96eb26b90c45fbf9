"""The console's side of a ticket, as two agents use it: take it, give it to a
colleague, change its priority, answer and close or make it wait in one step, open a
ticket for a customer; the queue's views (mine, unassigned, whose turn) show it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ledgerdesk.db.models import Ticket
from ledgerdesk.mail.notifications import notices_of
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.events.test_write_paths import events_after, last_id
from tests.factories import make_ticket
from tests.support import FrozenClock
from tests.web.conftest import WebClient, make_person

pytestmark = pytest.mark.anyio


def ticket(runtime: Runtime, ticket_id: int) -> Ticket:
    with runtime.transaction(write=False) as (session, _):
        found = session.get(Ticket, ticket_id)
        assert found is not None
        session.expunge(found)
        return found


async def test_two_agents_share_the_queue(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, _ = ann
    tess = make_person(runtime, "Tess Tech", "tess@example.com", staff=True)
    mine = make_ticket(runtime, ann_id, title="Disk full")
    theirs = make_ticket(runtime, ann_id, title="DNS broken")
    page = f"/console/tickets/{mine}"
    taken = await staff.submit(page, f"{page}/workflow", {"action": "take"})
    assert "The ticket is yours." in (await staff.follow(taken)).text
    other = f"/console/tickets/{theirs}"
    given = await staff.submit(
        other, f"{other}/workflow", {"action": "assign", "assignee": str(tess)}
    )
    assert given.status_code == 303
    assert ticket(runtime, theirs).assignee_id == tess
    listing = await staff.get("/console/tickets?owner=mine")
    assert "Disk full" in listing.text
    assert "DNS broken" not in listing.text
    everyone = await staff.get("/console/tickets?owner=any")
    assert "Tess Tech" in everyone.text
    unassigned = (await staff.get("/console/tickets?owner=unassigned")).text
    assert "No tickets match." in unassigned
    history = (await staff.get(other)).text
    assert "Assigned the ticket to Tess Tech" in history
    refused = await staff.submit(other, f"{other}/workflow", {"action": "assign", "assignee": "x"})
    assert refused.status_code == 400
    assert "must be a staff member" in refused.text
    raised = await staff.submit(page, f"{page}/workflow", {"action": "priority", "priority": "4"})
    assert raised.status_code == 303
    assert ticket(runtime, mine).priority == 4


async def test_answer_and_close_or_wait_in_one_step(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    closing = make_ticket(runtime, ann_id, title="Reboot please")
    page = f"/console/tickets/{closing}"
    before = last_id(runtime)
    sent = await staff.submit(page, f"{page}/reply", {"content": "Rebooted.", "then": "close"})
    assert "Reply sent; the ticket is closed." in (await staff.follow(sent)).text
    replied, closed = events_after(runtime, before)
    assert (replied.type, closed.type, closed.payload["afterReply"]) == (
        "ticket.replied",
        "ticket.closed",
        True,
    )

    class Nobody:
        def choices(self) -> list[tuple[int, str]]:
            return []

        def helped(self, staff_id: int, customer_id: int) -> bool:
            return False

    # The customer hears of the answer; not again of the close it came with.
    assert notices_of(closed, Nobody()) == []  # type: ignore[arg-type]
    waiting = make_ticket(runtime, ann_id, title="Send the logs")
    page = f"/console/tickets/{waiting}"
    no_date = await staff.submit(page, f"{page}/reply", {"content": "Logs?", "then": "wait"})
    assert no_date.status_code == 400
    assert "until when the ticket waits" in no_date.text
    assert ticket(runtime, waiting).turn == 1  # refused whole: no reply either
    sent = await staff.submit(
        page, f"{page}/reply", {"content": "Logs?", "then": "wait", "until": "2026-12-01T09:00"}
    )
    assert sent.status_code == 303
    assert ticket(runtime, waiting).pending_until is not None
    ours = await staff.get("/console/tickets?turn=ours")
    assert "Send the logs" not in ours.text
    customers = await staff.get("/console/tickets?turn=customers")
    assert "Send the logs" in customers.text
    # A customer's form cannot close or park anything with its reply.
    own = f"/account/tickets/{waiting}"
    refused = await customer.submit(own, f"{own}/reply", {"content": "Here.", "then": "close"})
    assert refused.status_code == 400
    assert ticket(runtime, waiting).status == 1


async def test_staff_open_a_ticket_for_a_customer(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    form = await staff.get(f"/console/tickets/new?customer={ann_id}")
    assert f'value="{ann_id}"' in form.text
    fields = {
        "customer": "ann@example.com",
        "title": "Planned maintenance",
        "content": "We move your server tonight.",
        "priority": "2",
        "reference": "",
    }
    made = await staff.submit("/console/tickets/new", "/console/tickets/new", fields)
    assert made.status_code == 303
    ticket_id = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    opened = ticket(runtime, ticket_id)
    assert (opened.user_id, opened.turn) == (ann_id, 2)
    seen = await customer.get(f"/account/tickets/{ticket_id}")
    assert "We move your server tonight." in seen.text
    unknown = await staff.submit(
        "/console/tickets/new", "/console/tickets/new", {**fields, "customer": "nobody@x.example"}
    )
    assert unknown.status_code == 400
    assert "no customer has this id or email address" in unknown.text


async def test_a_selection_of_the_queue_changes_all_at_once_or_not_at_all(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, _ = ann
    chosen = [make_ticket(runtime, ann_id, title=f"Alert {n}") for n in range(3)]
    fields: dict[str, str | list[str]] = {
        "ticket": [str(t) for t in chosen],
        "action": "tag",
        "tag": "Monitoring",
        "back": "owner=any&tag=monitoring",
    }
    tagged = await staff.submit("/console/tickets", "/console/tickets/bulk", fields)
    assert tagged.headers["location"].startswith("/console/tickets?owner=any&tag=monitoring")
    listing = await staff.follow(tagged)
    assert "3 tickets: tagged." in listing.text
    assert listing.text.count(">monitoring</a>") == 3
    # One refused ticket refuses the whole selection: nothing changes.
    wrong = {"ticket": [str(chosen[0]), "999999"], "action": "close", "back": ""}
    refused = await staff.submit("/console/tickets", "/console/tickets/bulk", wrong)
    assert refused.status_code == 404
    assert ticket(runtime, chosen[0]).status == 1
    closing = {"ticket": [str(t) for t in chosen], "action": "close", "back": "//evil.example"}
    closed = await staff.submit("/console/tickets", "/console/tickets/bulk", closing)
    assert closed.headers["location"].startswith("/console/tickets?")
    assert "evil.example" not in closed.headers["location"].split("?")[0]
    assert {ticket(runtime, t).status for t in chosen} == {0}
    empty = await staff.submit("/console/tickets", "/console/tickets/bulk", {"action": "close"})
    assert empty.status_code == 400


async def test_the_portal_shows_tickets_answered_by_staff_and_filters_by_state(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    answered = make_ticket(runtime, ann_id, title="Answered one")
    make_ticket(runtime, ann_id, title="Waiting one")
    closed = make_ticket(runtime, ann_id, title="Closed one")
    page = f"/console/tickets/{answered}"
    await staff.submit(page, f"{page}/reply", {"content": "Fixed it."})
    other = f"/console/tickets/{closed}"
    await staff.submit(other, f"{other}/status", {"action": "close"})
    home = (await customer.get("/account/")).text
    assert "Answered by us (1)" in home
    assert home.count('<span class="badge waiting">answered</span>') == 1
    only = (await customer.get("/account/?tickets=answered")).text
    assert "Answered one" in only
    assert "Waiting one" not in only
    assert "Closed one" in (await customer.get("/account/?tickets=closed")).text
    assert "Closed one" not in (await customer.get("/account/?tickets=open")).text
    # Once the customer answers, it is no longer theirs to read.
    own = f"/account/tickets/{answered}"
    await customer.submit(own, f"{own}/reply", {"content": "Thanks!"})
    assert "Answered by us (0)" in (await customer.get("/account/")).text


async def test_a_ticket_is_unread_for_each_agent_until_they_open_it(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], app: object, clock: FrozenClock
) -> None:
    ann_id, customer = ann
    ticket_id = make_ticket(runtime, ann_id, title="Slow disks")
    make_person(runtime, "Tess Tech", "tess@example.com", staff=True)
    tess = WebClient(make_client(app, "198.51.100.77"))  # type: ignore[arg-type]
    await tess.sign_in("tess@example.com")
    marker = '<span class="badge waiting">unread</span>'
    assert marker in (await staff.get("/console/tickets")).text
    assert (await staff.get(f"/console/tickets/{ticket_id}")).status_code == 200
    assert marker not in (await staff.get("/console/tickets")).text
    assert marker in (await tess.get("/console/tickets")).text  # each agent their own
    clock.advance(60)
    own = f"/account/tickets/{ticket_id}"
    await customer.submit(own, f"{own}/reply", {"content": "Still slow."})
    assert marker in (await staff.get("/console/tickets")).text  # the customer wrote since


async def test_a_ticket_merged_into_another_moves_its_messages_and_points_there(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], app: object
) -> None:
    ann_id, customer = ann
    keep = make_ticket(runtime, ann_id, title="Server down", content="web01 is down.")
    dup = make_ticket(runtime, ann_id, title="Server still down", content="Any news?")
    bob = make_person(runtime, "Bob", "bob@example.com")
    others = make_ticket(runtime, bob, title="Bob's")
    with runtime.transaction(write=False) as (session, _):
        code_of = {t.id: t.code for t in session.scalars(select(Ticket))}
    page = f"/console/tickets/{dup}"
    tagged = {"action": "tags", "tags": "outage"}
    await staff.submit(page, f"{page}/workflow", tagged)
    unconfirmed = await staff.submit(page, f"{page}/merge", {"into": str(code_of[keep])})
    assert unconfirmed.status_code == 400
    assert "cannot be undone" in unconfirmed.text
    cross = await staff.submit(
        page, f"{page}/merge", {"into": str(code_of[others]), "confirm": "yes"}
    )
    assert cross.status_code == 400
    assert "only a customer" in cross.text
    before = last_id(runtime)
    merged = await staff.submit(
        page, f"{page}/merge", {"into": f"#{code_of[keep]}", "confirm": "yes"}
    )
    assert merged.headers["location"].startswith(f"/console/tickets/{keep}")
    assert [e.type for e in events_after(runtime, before)] == [
        "ticket.tagged",
        "ticket.closed",
        "ticket.merged",
    ]
    target = (await staff.follow(merged)).text
    assert "web01 is down." in target
    assert "Any news?" in target
    assert ">outage<" in target or "outage" in target
    assert f"Merged ticket #{code_of[dup]} into this one" in target
    # The customer's old id still answers, closed for good, pointing to the other.
    old = (await customer.get(f"/account/tickets/{dup}")).text
    assert f"Merged into ticket #{code_of[keep]}" in old
    assert ticket(runtime, dup).status == 2
    assert ticket(runtime, dup).merged_into_id == keep
    again = await staff.submit(
        page, f"{page}/merge", {"into": str(code_of[keep]), "confirm": "yes"}
    )
    assert again.status_code in (400, 409)


async def test_the_console_shows_what_falls_due_and_what_is_late(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], clock: FrozenClock
) -> None:
    ann_id, _ = ann
    make_ticket(runtime, ann_id, title="Urgent outage", priority=4)  # due Monday 09:30
    queue = (await staff.get("/console/tickets?sort=due")).text
    assert "Urgent outage" in queue
    assert re.search(r"<span title=\"[^\"]+\" class=\"\">in 1 d 21 h<", queue)
    assert "past the target" not in (await staff.get("/console/")).text
    clock.advance(2 * 86400)  # Monday noon: 2 h 30 min late
    await staff.sign_in("sam@example.com")  # the session of Saturday has lapsed
    late = (await staff.get("/console/")).text
    assert "1 ticket past the target" in late
    assert (
        'class="overdue">overdue 2 h 30 min' in (await staff.get("/console/tickets?sort=due")).text
    )
