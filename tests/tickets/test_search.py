"""The console's search: one box over a ticket's number, reference, customer (name,
email), title and messages, whatever the case and accents, through an index kept by the
writes themselves, best match first, with the queue's filters."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.db.models import SearchEntry, Ticket, User
from ledgerdesk.db.prepared import session_db
from ledgerdesk.db.search import fts5_match, terms, tsquery, words
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import QueueFilter, SearchSort, TicketQueries
from ledgerdesk.tickets.service import TicketService
from tests.factories import make_ticket, make_user, staff_reply, system_work
from tests.support import FrozenClock


def search(
    runtime: Runtime, text: str, *, sort: SearchSort = "best", offset: int = 0, **which: object
) -> list[int]:
    with runtime.transaction(write=False) as (session, _):
        rows = TicketQueries(session_db(session)).search(
            QueueFilter(**{"status": None, **which}),  # type: ignore[arg-type]
            text,
            sort=sort,
            offset=offset,
            limit=50,
        )
    return [r.id for r in rows]


def customer(runtime: Runtime, name: str, email: str | None = None) -> int:
    with system_work(runtime) as work:
        return AccountService(work).create_user(name=name, email=email, staff=False).id


def code_of(runtime: Runtime, ticket_id: int) -> int:
    with runtime.transaction(write=False) as (session, _):
        code = session.scalar(select(Ticket.code).where(Ticket.id == ticket_id))
        assert code is not None
        return code


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zoë's  ÉCOLE-12", "zoe s ecole 12"),
        ("Straße", "strasse"),
        ("ﬁle №5", "file no5"),
        ("İstanbul Çağlar", "istanbul caglar"),
        ("snake_case, dash-ed; 1.5", "snake case dash ed 1 5"),
        ("Ångström Ørsted", "angstrom ørsted"),
        ("東京 サーバー", "東京 サーバー"),
    ],
)
def test_words_are_folded_to_plain_lower_case(text: str, folded: str) -> None:
    assert words(text) == folded


def test_a_query_is_words_only_so_nothing_in_it_is_an_operator() -> None:
    query = '"dns" OR NEAR(a b) * -x :* col:y \'; DROP TABLE x; --'
    found = terms(query)
    assert all(t.isalnum() for t in found)
    assert fts5_match(terms("Zoë dns")) == '"zoe" "dns"*'
    assert tsquery(terms("Zoë dns")) == "zoe & dns:*"
    assert terms("!!! ... ---") == []
    assert len(terms(" ".join(f"w{n}" for n in range(20)))) == 8


def test_finds_by_code_reference_customer_title_and_message(runtime: Runtime) -> None:
    zoe = customer(runtime, "Zoë Ådler", "zoe.adler@example.net")
    max_ = customer(runtime, "Max Power", "max@power.example")
    by_title = make_ticket(runtime, zoe, title="Rack 12 lost power", content="Help.")
    by_message = make_ticket(
        runtime, max_, title="Question", content="The kernel PANICKED during the backup."
    )
    by_reference = make_ticket(runtime, max_, title="Order", reference="ORD-2026-0042")
    assert search(runtime, "zoe") == [by_title]  # "zoe" finds "Zoë"
    assert search(runtime, "ADLER") == [by_title]
    assert search(runtime, "zoe.adler@example.net") == [by_title]
    assert sorted(search(runtime, "max power")) == [by_message, by_reference]
    assert set(search(runtime, "power")) == {by_title, by_message, by_reference}
    assert search(runtime, "kernel panicked") == [by_message]
    assert search(runtime, "panic") == [by_message]  # every word as the start of a word
    assert search(runtime, "ord-2026-0042") == [by_reference]
    code = code_of(runtime, by_message)
    assert search(runtime, f"#{code}") == [by_message]
    assert search(runtime, str(code)) == [by_message]
    assert search(runtime, "nothing like this") == []
    assert search(runtime, "kernel zoe") == []  # every word in one entry
    assert search(runtime, '"dns" OR * NEAR(') == []
    assert search(runtime, "...") == []


def test_internal_notes_are_searched_and_the_best_match_comes_first(
    runtime: Runtime, clock: FrozenClock
) -> None:
    ann = customer(runtime, "Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    in_note = make_ticket(runtime, ann, title="Billing", content="Please check.")
    with runtime.work(Actor.staff(sam), Origin("console")) as work:
        author = work.session.get(User, sam)
        assert author is not None
        TicketService(work).note(
            in_note, author=author, content="Firmware bug, see vendor case.", files=[]
        )
    clock.advance(60)
    in_message = make_ticket(runtime, ann, title="Disk", content="A firmware update?")
    clock.advance(60)
    in_title = make_ticket(runtime, ann, title="Firmware of the RAID controller")
    clock.advance(60)
    staff_reply(runtime, in_message, sam, content="The firmware is current.")
    # The ticket's own words outrank messages; among messages the more recent first.
    assert search(runtime, "firmware") == [in_title, in_message, in_note]
    # A ticket whose code is the query comes first of all, before ones that mention it.
    code = code_of(runtime, in_note)
    mentions = make_ticket(runtime, ann, title=f"Follow-up to {code}")
    assert search(runtime, str(code)) == [in_note, mentions]


def test_the_queue_filters_and_orders_apply_to_what_is_found(
    runtime: Runtime, clock: FrozenClock
) -> None:
    ann = customer(runtime, "Ann")
    bob = customer(runtime, "Bob")
    made = []
    for number in range(6):
        clock.advance(10)
        made.append(
            make_ticket(
                runtime,
                ann if number % 2 else bob,
                title=f"Backup {number}",
                priority=1 + number % 4,
            )
        )
    with system_work(runtime) as work:
        TicketService(work).close(made[0], user_id=None)
    assert search(runtime, "backup", sort="waiting") == made
    assert search(runtime, "backup", sort="waiting", status=1) == made[1:]
    assert search(runtime, "backup", sort="waiting", user_id=ann) == made[1::2]
    assert search(runtime, "backup", sort="waiting", priority=2) == [made[1], made[5]]
    assert search(runtime, "backup", sort="priority") == [
        made[3], made[2], made[1], made[5], made[0], made[4]
    ]  # fmt: skip
    assert search(runtime, "backup", sort="waiting", offset=4) == made[4:]


def test_a_renamed_customer_is_found_by_the_new_name_only(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann Old", "ann@old.example")
    ticket_id = make_ticket(runtime, ann, title="Anything")
    with system_work(runtime) as work:
        AccountService(work).update_user(ann, name="Ann Néw", email="ann@new.example")
    assert search(runtime, "new") == [ticket_id]
    assert search(runtime, "ann old") == []
    assert search(runtime, "old.example") == []


def test_merged_messages_are_found_on_the_ticket_they_moved_to(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    source = make_ticket(runtime, ann, title="Alert one", content="Disk sdb degraded.")
    target = make_ticket(runtime, ann, title="Alert two", content="Disk sda degraded.")
    with runtime.work(Actor.staff(sam), Origin("console")) as work:
        author = work.session.get(User, sam)
        assert author is not None
        TicketService(work).merge(source, target, author=author)
    assert search(runtime, "sdb") == [target]
    assert search(runtime, "alert one") == [source]  # the pointer keeps its own title


def test_every_ticket_and_message_has_one_entry(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann")
    sam = make_user(runtime, name="Sam", staff=True)
    first = make_ticket(runtime, ann)
    make_ticket(runtime, ann)
    staff_reply(runtime, first, sam)
    with runtime.transaction(write=False) as (session, _):
        tickets = session.scalar(select(func.count()).where(SearchEntry.ticket_id.is_not(None)))
        messages = session.scalar(select(func.count()).where(SearchEntry.reply_id.is_not(None)))
    assert (tickets, messages) == (2, 3)
