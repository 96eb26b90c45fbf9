"""The console's decisions on mail that waits: a held mail accepted into a ticket (its
sender trusted from then on, if chosen) or as a new ticket, a failed or unreadable mail
tried again, any of them dismissed; each decision taken once, refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.config import Settings
from ledgerdesk.db.models import MailAddress, MailMessage, Reply, Ticket, User
from ledgerdesk.mail import receiving
from ledgerdesk.mail.service import MailIntake
from ledgerdesk.runtime import Runtime
from tests.events.test_write_paths import events_after, last_id
from tests.factories import make_ticket
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio

SUPPORT = "support@hosting.example"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        mail_from=f"Support <{SUPPORT}>",
        mail_strangers="hold",
        mail_unproven="hold",
    )


def mail(sender: str, subject: str, text: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\nTo: {SUPPORT}\nSubject: {subject}\nMessage-ID: <{message_id}>\n\n{text}\n"
    ).encode()


def received(runtime: Runtime, raw: bytes) -> receiving.Taken:
    writer = IncomingWriter(runtime.incoming_dir, 10_000_000, "mail")
    writer.write(raw)
    return receiving.take(runtime, writer.finish("mail.eml", "message/rfc822"), via="pipe")


def row_of(runtime: Runtime, mail_id: int) -> MailMessage:
    with runtime.transaction(write=False) as (session, _):
        row = session.get(MailMessage, mail_id)
        assert row is not None
        session.expunge(row)
        return row


async def decide(staff: WebClient, mail_id: int, **fields: str) -> object:
    page = f"/console/mail/{mail_id}"
    return await staff.submit(page, f"{page}/actions", fields)


async def test_a_strangers_held_mail_opens_a_ticket_for_a_new_customer(
    runtime: Runtime, staff: WebClient
) -> None:
    taken = received(runtime, mail("Eve <eve@stranger.example>", "Quote?", "How much?", "e1@x"))
    assert taken.state == "held"
    page = await staff.get(f"/console/mail/{taken.mail_id}")
    assert page.status_code == 200
    assert "How much?" in page.text
    assert "a new customer made for eve@stranger.example" in page.text
    before = last_id(runtime)
    answer = await decide(staff, taken.mail_id, action="open", customer="")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    events = events_after(runtime, before)
    assert [e.type for e in events] == ["customer.created", "ticket.created"]
    assert {(e.door, e.actor_kind) for e in events} == {("console", "staff")}
    row = row_of(runtime, taken.mail_id)
    assert row.state == "opened"
    assert row.why == "an unknown sender; accepted by Sam Support"
    assert answer.headers["location"].startswith(f"/console/tickets/{row.ticket_id}")  # type: ignore[attr-defined]
    with runtime.transaction(write=False) as (session, _):
        ticket = session.get(Ticket, row.ticket_id)
        assert ticket is not None
        customer = session.get(User, ticket.user_id)
        assert customer is not None
        assert (customer.email, customer.name) == ("eve@stranger.example", "Eve")
    again = await decide(staff, taken.mail_id, action="dismiss")
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "handled already" in again.text  # type: ignore[attr-defined]


async def test_a_held_mail_opens_a_ticket_for_the_customer_staff_name(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, _ = ann
    taken = received(runtime, mail("bob@ann-corp.example", "Help", "For Ann's servers.", "b1@x"))
    refused = await decide(staff, taken.mail_id, action="open", customer="nobody@nowhere.example")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "no customer has this id or email address" in refused.text  # type: ignore[attr-defined]
    assert row_of(runtime, taken.mail_id).state == "held"
    answer = await decide(staff, taken.mail_id, action="open", customer="ANN@example.com")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    row = row_of(runtime, taken.mail_id)
    with runtime.transaction(write=False) as (session, _):
        ticket = session.get(Ticket, row.ticket_id)
        assert ticket is not None
        assert (ticket.user_id, ticket.title) == (ann_id, "Help")


async def test_a_held_mail_naming_a_ticket_joins_it_and_its_sender_is_trusted_from_then(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, _ = ann
    ticket_id = make_ticket(runtime, ann_id)
    with runtime.transaction(write=False) as (session, _):
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        code = ticket.code
    colleague = "bob@ann-corp.example"
    taken = received(runtime, mail(colleague, f"Re: [#{code}] down", "Still down.", "c1@x"))
    assert taken.state == "held"
    assert row_of(runtime, taken.mail_id).named_ticket_id == ticket_id
    page = await staff.get(f"/console/mail/{taken.mail_id}")
    assert f'value="{code}"' in page.text  # the named ticket, ready to accept
    wrong = await decide(staff, taken.mail_id, action="join", ticket="#1", trust="yes")
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    before = last_id(runtime)
    answer = await decide(staff, taken.mail_id, action="join", ticket=f"#{code}", trust="yes")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert [e.type for e in events_after(runtime, before)] == [
        "customer.address_added",
        "ticket.replied",
    ]
    with runtime.transaction(write=False) as (session, _):
        replies = session.scalars(
            select(Reply).where(Reply.ticket_id == ticket_id).order_by(Reply.id)
        ).all()
        assert (replies[-1].author_id, replies[-1].content) == (ann_id, "Still down.")
        address = session.get(MailAddress, colleague)
        assert address is not None
        assert (address.user_id, address.confirmed_at is not None) == (ann_id, True)
    # From now on the colleague's mail naming the ticket joins it by itself.
    later = received(runtime, mail(colleague, f"Re: [#{code}] down", "Up again.", "c2@x"))
    assert (later.state, later.ticket_id) == ("joined", ticket_id)


async def test_a_mail_that_failed_is_kept_and_taken_when_tried_again(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    ann_id, _ = ann

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a fault in opening tickets")

    with monkeypatch.context() as patched:
        patched.setattr(MailIntake, "_open", broken)
        taken = received(runtime, mail("ann@example.com", "Disk", "Disk full.", "f1@x"))
    assert taken.state == "failed"
    row = row_of(runtime, taken.mail_id)
    assert row.why == "could not be taken: RuntimeError: a fault in opening tickets"
    assert (row.sender, row.subject) == ("ann@example.com", "Disk")
    listing = await staff.get("/console/mail")
    assert "a fault in opening tickets" in listing.text
    before = last_id(runtime)
    answer = await decide(staff, taken.mail_id, action="retry")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    [event] = events_after(runtime, before)
    assert (event.type, event.door, event.actor_kind) == ("ticket.created", "console", "customer")
    row = row_of(runtime, taken.mail_id)
    assert (row.state, row.customer_id) == ("opened", ann_id)
    # The same mail from the MTA again is known: nothing twice.
    assert received(runtime, mail("ann@example.com", "Disk", "Disk full.", "f1@x")).again


async def test_an_unreadable_mail_tried_again_stays_so_and_can_be_dismissed(
    runtime: Runtime, staff: WebClient
) -> None:
    taken = received(runtime, b"Subject: nobody sent this\n\nno From line\n")
    assert taken.state == "unreadable"
    page = await staff.get(f"/console/mail/{taken.mail_id}")
    assert "It cannot be read: the message has no sender address" in page.text
    before = last_id(runtime)
    assert (await decide(staff, taken.mail_id, action="retry")).status_code == 303  # type: ignore[attr-defined]
    [event] = events_after(runtime, before)
    assert (event.type, event.payload["state"], event.payload["again"]) == (
        "mail.received",
        "unreadable",
        True,
    )
    assert (event.door, event.actor_kind) == ("console", "staff")
    refused = await decide(staff, taken.mail_id, action="open", customer="")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "Only a held mail is accepted" in refused.text  # type: ignore[attr-defined]
    assert (await decide(staff, taken.mail_id, action="dismiss")).status_code == 303  # type: ignore[attr-defined]
    row = row_of(runtime, taken.mail_id)
    assert row.state == "dismissed"
    assert row.why.endswith("dismissed by Sam Support")
    assert events_after(runtime, before)[-1].type == "mail.dismissed"
    waiting = await staff.get("/console/mail")
    assert f'/console/mail/{taken.mail_id}"' not in waiting.text


async def test_customers_cannot_decide_on_mail(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    taken = received(runtime, mail("eve@stranger.example", "Hi", "Hello.", "s1@x"))
    _, customer = ann
    assert (await customer.get(f"/console/mail/{taken.mail_id}")).status_code == 303
    assert (await staff.get("/console/mail/999999")).status_code == 404
