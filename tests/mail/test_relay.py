"""Notifications out through a real SMTP server (aiosmtpd, in the test), on both
databases: who gets what, the headers, files and PDFs, retries, refusals that mark an
address failing, and the round trip of a customer answering a notification by mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.config import Settings
from ledgerdesk.db.models import MailAddress, MailOutbox, User
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.mail.service import MailIntake
from ledgerdesk.mail.tags import Tags
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import TicketService
from tests.factories import make_invoice, make_ticket, make_user, prepare_invoicing, system_work
from tests.servers import Sink

pytestmark = pytest.mark.anyio

SUPPORT = "support@hosting.example"


@pytest.fixture
def mailing(settings: Settings, sink: Sink) -> Iterator[Runtime]:
    runtime = Runtime.build(
        settings.with_overrides(
            smtp_url=f"smtp://127.0.0.1:{sink.port}",
            mail_from=f"Hosting Support <{SUPPORT}>",
            public_url="https://desk.hosting.example",
        )
    )
    yield runtime
    runtime.engine.dispose()


class Later:
    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        import time

        return int(time.time() * 1000) + self.offset


@asynccontextmanager
async def relaying(runtime: Runtime, **options: Any) -> AsyncIterator[MailRelay]:
    relay = MailRelay(runtime, **options)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay.run)
        await asyncio.sleep(0.05)
        yield relay
        tasks.cancel_scope.cancel()


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def person(runtime: Runtime, name: str, email: str, *, staff: bool = False) -> int:
    with system_work(runtime) as work:
        return AccountService(work).create_user(name=name, email=email, staff=staff).id


def reply_as_staff(
    runtime: Runtime, ticket: int, staff: int, content: str, files: list[tuple[str, bytes]] = ()
) -> None:  # type: ignore[assignment]
    uploads = []
    for name, data in files:
        writer = IncomingWriter(runtime.incoming_dir, 10_000_000, name)
        writer.write(data)
        uploads.append(writer.finish(name, "text/plain"))
    with runtime.work(Actor.staff(staff), Origin("console")) as work:
        author = work.session.get(User, staff)
        assert author is not None
        TicketService(work).reply(ticket, author=author, content=content, files=uploads)


def customer_opens(runtime: Runtime, customer: int, title: str) -> int:
    with runtime.work(Actor.customer(customer), Origin("api")) as work:
        return (
            TicketService(work)
            .create(
                customer_id=customer,
                title=title,
                content="It stopped answering.",
                reference="",
                priority=2,
                files=[],
            )
            .id
        )


def outbox(runtime: Runtime) -> list[MailOutbox]:
    with runtime.transaction(write=False) as (session, _):
        return list(session.scalars(select(MailOutbox).order_by(MailOutbox.id)))


async def test_a_staff_reply_reaches_the_customer_threaded_with_its_files(
    mailing: Runtime, sink: Sink
) -> None:
    ann = person(mailing, "Ann", "ann@example.com")
    sam = person(mailing, "Sam", "sam@hosting.example", staff=True)
    ticket = make_ticket(mailing, ann, title="Server unreachable")
    async with relaying(mailing) as relay:
        reply_as_staff(mailing, ticket, sam, "We replaced the disk.", [("log.txt", b"fixed\n")])
        await until(lambda: len(sink.to("ann@example.com")) == 1)
        await until(lambda: relay.sent >= 1)
    [mail] = sink.to("ann@example.com")
    with mailing.transaction(write=True) as (session, _):
        tags = Tags(mail_key(session), "hosting.example")
    tag = tags.read_message_id(str(mail["Message-ID"]))
    assert tag is not None
    assert (tag.ticket_id, tag.recipient_id) == (ticket, ann)
    assert str(mail["Subject"]).startswith("[#")
    assert str(mail["Subject"]).endswith("] Server unreachable")
    assert tags.read_reply_address(str(mail["Reply-To"]), SUPPORT) == ticket
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Sam answered your ticket" in text
    assert "We replaced the disk." in text
    assert f"https://desk.hosting.example/account/tickets/{ticket}" in text
    [attached] = list(mail.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("log.txt", "fixed\n")
    [row] = [r for r in outbox(mailing) if r.kind == "staff_reply"]
    assert (row.state, row.message_id) == ("sent", str(mail["Message-ID"]).strip("<>"))


async def test_the_customers_answer_by_mail_joins_the_ticket_and_tells_staff(
    mailing: Runtime, sink: Sink
) -> None:
    ann = person(mailing, "Ann", "ann@example.com")
    sam = person(mailing, "Sam", "sam@hosting.example", staff=True)
    async with relaying(mailing):
        ticket = customer_opens(mailing, ann, "Server unreachable")
        reply_as_staff(mailing, ticket, sam, "We replaced the disk.")
        await until(lambda: len(sink.to("ann@example.com")) == 1)
        notification = sink.to("ann@example.com")[0]
        quoted = "\n".join(
            "> " + line
            for line in notification.get_body(("plain",)).get_content().splitlines()  # type: ignore[union-attr]
        )
        answer = (
            f"From: Ann <ann@example.com>\nTo: {notification['Reply-To']}\n"
            f"Subject: Re: {notification['Subject']}\nMessage-ID: <answer1@example.com>\n"
            f"In-Reply-To: {notification['Message-ID']}\n\nWorks again, thank you!\n\n"
            f"On Mon, Hosting Support <{SUPPORT}> wrote:\n{quoted}\n"
        ).encode()
        writer = IncomingWriter(mailing.incoming_dir, 10_000_000, "mail")
        writer.write(answer)
        raw = writer.finish("mail.eml", "message/rfc822")
        with mailing.work(Actor.VISITOR, Origin("mail")) as work:
            taken = MailIntake(
                work,
                support_address=SUPPORT,
                domain="hosting.example",
                policy=Policy(),
                store_file=lambda found: None,
            ).take(raw, answer, via="pipe")
        assert (taken.state, taken.ticket_id) == ("joined", ticket)
        await until(lambda: len(sink.to("sam@hosting.example")) == 2)
    to_sam = sink.to("sam@hosting.example")
    assert [str(m["Subject"]).split("] ", 1)[1] for m in to_sam] == [
        "New: Server unreachable",
        "Server unreachable",
    ]
    text = to_sam[1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Works again, thank you!" in text
    assert "We replaced the disk." not in text  # the quote was cut
    assert len(sink.to("ann@example.com")) == 1  # nobody is told of their own mail


def counted(outcome: str) -> float:
    found = REGISTRY.get_sample_value("ledgerdesk_mail_deliveries_total", {"outcome": outcome})
    return found or 0.0


async def test_a_refused_address_fails_and_gets_nothing_more(mailing: Runtime, sink: Sink) -> None:
    sink.answer = lambda address, tries: (
        "550 5.1.1 No such user" if address == "gone@example.com" else "250 OK"
    )
    gone = person(mailing, "Gone", "gone@example.com")
    sam = person(mailing, "Sam", "sam@hosting.example", staff=True)
    ticket = make_ticket(mailing, gone)
    failed = counted("failed")
    async with relaying(mailing):
        reply_as_staff(mailing, ticket, sam, "One.")
        await until(lambda: any(r.state == "failed" for r in outbox(mailing)))
        assert counted("failed") == failed + 1  # /metrics
        reply_as_staff(mailing, ticket, sam, "Two.")
        await asyncio.sleep(0.3)
    rows = [r for r in outbox(mailing) if r.address == "gone@example.com"]
    assert [r.state for r in rows] == ["failed"]
    assert rows[0].last_error is not None
    assert rows[0].last_error.startswith("550")
    with mailing.transaction(write=False) as (session, _):
        failing = session.get(MailAddress, "gone@example.com")
        assert failing is not None
        assert failing.failing_since is not None


async def test_a_temporary_refusal_is_tried_again(mailing: Runtime, sink: Sink) -> None:
    sink.answer = lambda address, tries: "451 4.7.1 Try later" if tries == 1 else "250 OK"
    clock = Later()
    ann = person(mailing, "Ann", "ann@example.com")
    sam = person(mailing, "Sam", "sam@hosting.example", staff=True)
    ticket = make_ticket(mailing, ann)
    retrying, sent = counted("retrying"), counted("sent")
    async with relaying(mailing, clock_ms=clock):
        reply_as_staff(mailing, ticket, sam, "Hello.")
        await until(lambda: any(r.attempts == 1 for r in outbox(mailing)))
        [row] = [r for r in outbox(mailing) if r.address == "ann@example.com"]
        assert (row.state, row.last_error) == ("pending", "451 4.7.1 Try later")
        clock.offset = 61_000
        await until(lambda: len(sink.to("ann@example.com")) == 1)
        await until(lambda: counted("sent") >= sent + 1)
    assert counted("retrying") >= retrying + 1  # /metrics


async def test_an_invoice_goes_out_with_its_pdf(mailing: Runtime, sink: Sink) -> None:
    ann = make_user(mailing, name="Ann")
    with system_work(mailing) as work:
        AccountService(work).update_user(
            ann, email="ann@example.com", billing={"billing_email": "billing@example.com"}
        )
    prepare_invoicing(mailing, ann)
    async with relaying(mailing):
        view = make_invoice(mailing, ann, created_on=date.today())
        await until(lambda: len(sink.to("billing@example.com")) == 1)
    [mail] = sink.to("billing@example.com")
    assert mail["Subject"] == f"Invoice {view.number}"
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == f"{view.number}.pdf"
    assert pdf.get_content().startswith(b"%PDF")


async def test_nobody_hears_of_their_own_doing_and_old_news_is_not_sent(
    mailing: Runtime, sink: Sink
) -> None:
    ann = person(mailing, "Ann", "ann@example.com")
    ticket = make_ticket(mailing, ann)
    with mailing.work(Actor.customer(ann), Origin("portal")) as work:
        TicketService(work).close(ticket, user_id=ann)
    clock = Later()
    clock.offset = 2 * 86_400_000
    async with relaying(mailing, clock_ms=clock):
        await asyncio.sleep(0.3)
    assert sink.messages == []
    assert outbox(mailing) == []


async def test_a_stranger_is_told_once_an_hour_and_the_hourly_cap_holds(
    mailing: Runtime, sink: Sink
) -> None:
    async with relaying(mailing):
        for n in range(3):
            raw = (
                f"From: eve@stranger.example\nTo: {SUPPORT}\nSubject: Hi {n}\n"
                f"Message-ID: <s{n}@stranger.example>\n\nHello?\n"
            ).encode()
            writer = IncomingWriter(mailing.incoming_dir, 10_000_000, "mail")
            writer.write(raw)
            with mailing.work(Actor.VISITOR, Origin("mail")) as work:
                taken = MailIntake(
                    work,
                    support_address=SUPPORT,
                    domain="hosting.example",
                    policy=Policy(),
                    store_file=lambda found: None,
                ).take(writer.finish("mail.eml", "message/rfc822"), raw, via="pipe")
            assert taken.state == "refused"
        await until(lambda: len(sink.to("eve@stranger.example")) == 1)
        await asyncio.sleep(0.3)
    [told] = sink.to("eve@stranger.example")
    assert told["Subject"] == "Not delivered: Hi 0"
    assert told["In-Reply-To"] == "<s0@stranger.example>"
    assert told["Auto-Submitted"] == "auto-generated"
    assert "registered addresses" in told.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_an_address_gets_at_most_the_hourly_cap_of_automatic_mail(
    settings: Settings, sink: Sink
) -> None:
    runtime = Runtime.build(
        settings.with_overrides(
            smtp_url=f"smtp://127.0.0.1:{sink.port}",
            mail_from=f"Support <{SUPPORT}>",
            mail_hourly_cap=2,
        )
    )
    try:
        ann = person(runtime, "Ann", "ann@example.com")
        sam = person(runtime, "Sam", "sam@hosting.example", staff=True)
        ticket = make_ticket(runtime, ann)
        async with relaying(runtime):
            for n in range(4):
                reply_as_staff(runtime, ticket, sam, f"Reply {n}.")
            await until(lambda: len(sink.to("ann@example.com")) == 2)
            await asyncio.sleep(0.3)
        assert len(sink.to("ann@example.com")) == 2
    finally:
        runtime.engine.dispose()


def test_two_transactions_making_the_missing_mail_key_agree_on_one(runtime: Runtime) -> None:
    """A database emptied by hand has no key: two servers making it at once both end up
    with the one that committed first."""
    import threading

    from ledgerdesk.db.models import MailKey

    with runtime.transaction(write=True) as (session, _):
        session.query(MailKey).delete()
    keys: list[bytes] = []
    # Both inside their transactions before either makes it (PostgreSQL; SQLite's
    # writers take turns, so there the second finds the first's).
    started = threading.Barrier(1 if runtime.settings.is_sqlite else 2)

    def make() -> None:
        with runtime.transaction(write=True) as (session, _):
            session.get(MailKey, 1)
            started.wait(timeout=5)
            keys.append(mail_key(session))

    threads = [threading.Thread(target=make) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    with runtime.transaction(write=False) as (session, _):
        stored = bytes.fromhex(session.get(MailKey, 1).key)  # type: ignore[union-attr]
    assert keys == [stored, stored]
