"""Taking received mail in (both databases): kept whole, threaded by the rules, turned
into a reply or a ticket with its files, or a row of the queue; never taken twice."""

from __future__ import annotations

from sqlalchemy import select

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS
from ledgerdesk.db.models import MailAddress, MailMessage, Ticket
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.mail.inbound import InboundFile
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.service import MailIntake, Taken
from ledgerdesk.mail.tags import Tags
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import TicketQueries
from ledgerdesk.tickets.service import TicketReader
from tests.factories import force_close, make_ticket, make_user, recorded_events, system_work

SUPPORT = "support@hosting.example"
DOMAIN = "hosting.example"


def upload(runtime: Runtime, name: str, content_type: str, data: bytes) -> IncomingFile:
    writer = IncomingWriter(runtime.incoming_dir, runtime.settings.max_attachment_bytes, name)
    writer.write(data)
    return writer.finish(name, content_type)


def take(runtime: Runtime, raw: bytes, policy: Policy | None = None) -> Taken:
    def store(found: InboundFile) -> IncomingFile | None:
        try:
            return upload(runtime, found.name, found.content_type, found.data)
        except PayloadTooLarge:
            return None

    with runtime.work(Actor.VISITOR, Origin("mail")) as work:
        intake = MailIntake(
            work,
            support_address=SUPPORT,
            domain=DOMAIN,
            policy=policy or Policy(),
            store_file=store,
        )
        return intake.take(upload(runtime, "mail.eml", "message/rfc822", raw), raw, via="pipe")


def customer(runtime: Runtime, name: str, email: str) -> int:
    from ledgerdesk.accounts.service import AccountService

    user_id = make_user(runtime, name=name)
    with system_work(runtime) as work:
        AccountService(work).update_user(user_id, email=email)
    return user_id


def tags(runtime: Runtime) -> Tags:
    with runtime.transaction(write=True) as (session, _):
        return Tags(mail_key(session), DOMAIN)


def mail(
    sender: str,
    subject: str = "Server down",
    extra: str = "",
    body: str = "Help!",
    message_id: str = "m1@mail.example.com",
) -> bytes:
    return (
        f"From: {sender}\nTo: {SUPPORT}\nSubject: {subject}\nMessage-ID: <{message_id}>\n"
        f"{extra}\n{body}\n"
    ).encode()


def thread(runtime: Runtime, ticket_id: int) -> list[str]:
    with runtime.transaction(write=False) as (session, _):
        from ledgerdesk.db.prepared import session_db

        view = TicketReader(TicketQueries(session_db(session))).thread(ticket_id, user_id=None)
    return [r.reply.content for r in view.replies]


def test_a_customers_mail_opens_a_ticket_with_its_files(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann", "Ann@Example.com")
    raw = (
        b"From: Ann <ann@example.com>\nTo: support@hosting.example\nSubject: Disk full\n"
        b"Message-ID: <a1@example.com>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nweb01 is full.\n"
        b"--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=df.txt\n\n"
        b"/dev/sda1 100%\n--b--\n"
    )
    taken = take(runtime, raw)
    assert (taken.state, taken.why) == ("opened", "a new ticket from a customer")
    assert taken.ticket_id is not None
    with runtime.transaction(write=False) as (session, _):
        ticket = session.get(Ticket, taken.ticket_id)
        assert ticket is not None
        assert (ticket.user_id, ticket.title) == (ann, "Disk full")
        row = session.get(MailMessage, taken.mail_id)
        assert row is not None
        assert (row.sender, row.via, row.size) == ("ann@example.com", "pipe", len(raw))
    assert thread(runtime, taken.ticket_id) == ["web01 is full."]
    created = [e for e in recorded_events(runtime) if e.type == "ticket.created"][-1]
    assert (created.door, created.actor_kind, created.actor_id) == ("mail", "customer", ann)
    assert [a["name"] for a in created.payload["attachments"]] == ["df.txt"]
    assert runtime.maintenance.verify(repair=False).missing == []  # the raw mail's bytes are kept
    assert runtime.maintenance.collect_orphans() == []  # and never taken for an orphan


def test_the_same_mail_twice_is_taken_once(runtime: Runtime) -> None:
    customer(runtime, "Ann", "ann@example.com")
    first = take(runtime, mail("ann@example.com"))
    again = take(runtime, mail("ann@example.com"))
    assert (again.mail_id, again.ticket_id, again.again) == (first.mail_id, first.ticket_id, True)
    with runtime.transaction(write=False) as (session, _):
        assert len(session.scalars(select(Ticket)).all()) == 1


def test_replies_join_by_signed_reference_reply_address_or_code(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann", "ann@example.com")
    ticket = make_ticket(runtime, ann)
    with runtime.transaction(write=False) as (session, _):
        code = session.get(Ticket, ticket).code  # type: ignore[union-attr]
    signed = tags(runtime)
    ours = signed.message_id(ticket, ann)
    quoted = "Thanks!\n\nOn Mon, Support <support@hosting.example> wrote:\n> We fixed it.\n"
    joined = take(
        runtime, mail("colleague@example.org", "Re: x", f"In-Reply-To: <{ours}>\n", quoted, "r1@x")
    )
    assert (joined.state, joined.ticket_id) == ("joined", ticket)
    by_address = (
        f"From: ann@example.com\nTo: {signed.reply_address(SUPPORT, ticket)}\n"
        "Subject: more\nMessage-ID: <r2@x>\n\nAnd more.\n"
    ).encode()
    assert take(runtime, by_address).ticket_id == ticket
    by_code = take(
        runtime, mail("ann@example.com", f"Re: [#{code}] x", body="Third.", message_id="r3@x")
    )
    assert by_code.ticket_id == ticket
    assert thread(runtime, ticket)[1:] == ["Thanks!", "And more.", "Third."]
    replied = [e for e in recorded_events(runtime) if e.type == "ticket.replied"]
    assert {(e.door, e.actor_kind, e.actor_id) for e in replied} == {("mail", "customer", ann)}


def test_a_stranger_naming_a_ticket_never_lands_in_it(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann", "ann@example.com")
    bob = customer(runtime, "Bob", "bob@example.com")
    ticket = make_ticket(runtime, ann)
    with runtime.transaction(write=False) as (session, _):
        code = session.get(Ticket, ticket).code  # type: ignore[union-attr]
    before = thread(runtime, ticket)
    opened = take(runtime, mail("bob@example.com", f"Re: [#{code}] x", message_id="s1@x"))
    assert opened.state == "opened"
    assert opened.ticket_id != ticket
    with runtime.transaction(write=False) as (session, _):
        assert session.get(Ticket, opened.ticket_id).user_id == bob  # type: ignore[union-attr]
    forged = take(
        runtime,
        mail(
            "eve@evil.example",
            f"Re: [#{code}] x",
            "In-Reply-To: <ld.1.1.abc.def@hosting.example>\n",
            message_id="s2@x",
        ),
    )
    assert (forged.state, forged.ticket_id) == ("held", None)
    held = take(
        runtime, mail("bob@example.com", f"[#{code}]", message_id="s3@x"), Policy(unproven="hold")
    )
    assert held.state == "held"
    assert thread(runtime, ticket) == before


def test_strangers_go_as_the_provider_chose(runtime: Runtime) -> None:
    refused = take(runtime, mail("eve@evil.example", message_id="u1@x"))
    assert (refused.state, refused.ticket_id) == ("refused", None)
    held = take(runtime, mail("eve@evil.example", message_id="u2@x"), Policy(strangers="hold"))
    assert held.state == "held"
    made = take(
        runtime, mail("Dora <dora@new.example>", message_id="u3@x"), Policy(strangers="create")
    )
    assert made.state == "opened"
    kinds = [e.type for e in recorded_events(runtime)]
    assert kinds[-2:] == ["customer.created", "ticket.created"]
    received = [e for e in recorded_events(runtime) if e.type == "mail.received"]
    assert [(e.payload["state"], e.door) for e in received] == [
        ("refused", "mail"),
        ("held", "mail"),
    ]


def test_automatic_mail_is_kept_and_ignored_and_a_bounce_marks_the_address(
    runtime: Runtime,
) -> None:
    ann = customer(runtime, "Ann", "ann@example.com")
    ticket = make_ticket(runtime, ann)
    ours = tags(runtime).message_id(ticket, ann)
    auto = take(
        runtime,
        mail("ann@example.com", extra=f"Auto-Submitted: auto-replied\nIn-Reply-To: <{ours}>\n"),
    )
    assert (auto.state, auto.ticket_id) == ("ignored", None)
    bounce = (
        "From: MAILER-DAEMON@mx.example.com\nTo: support@hosting.example\nSubject: Undelivered\n"
        "Message-ID: <dsn@mx>\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        'report-type=delivery-status; boundary="d"\n\n--d\nContent-Type: text/plain\n\nfailed\n'
        "--d\nContent-Type: message/delivery-status\n\nAction: failed\n"
        f"--d\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{ours}>\n--d--\n"
    ).encode()
    bounced = take(runtime, bounce)
    assert bounced.state == "bounced"
    with runtime.transaction(write=False) as (session, _):
        failing = session.get(MailAddress, "ann@example.com")
        assert failing is not None
        assert failing.failing_since is not None
    assert thread(runtime, ticket) == ["It stopped answering at 07:12."]


def test_unreadable_mail_lands_in_the_queue_with_its_reason(runtime: Runtime) -> None:
    taken = take(runtime, b"Subject: who?\n\nno sender\n")
    assert (taken.state, taken.why) == ("unreadable", "the message has no sender address")
    with runtime.transaction(write=False) as (session, _):
        row = session.get(MailMessage, taken.mail_id)
        assert row is not None
        assert row.raw_sha256


def test_a_reply_to_a_ticket_closed_for_good_opens_a_new_one(runtime: Runtime) -> None:
    ann = customer(runtime, "Ann", "ann@example.com")
    ticket = make_ticket(runtime, ann)
    force_close(runtime, ticket)
    ours = tags(runtime).message_id(ticket, ann)
    taken = take(runtime, mail("ann@example.com", "Re: x", f"In-Reply-To: <{ours}>\n"))
    assert taken.state == "opened"
    assert taken.ticket_id != ticket


def test_files_beyond_the_limits_are_named_in_the_text(runtime: Runtime) -> None:
    customer(runtime, "Ann", "ann@example.com")
    parts = "".join(
        f"--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=f{n}.txt\n\n"
        f"{n}\n"
        for n in range(MAX_ATTACHMENTS + 2)
    )
    raw = (
        "From: ann@example.com\nTo: support@hosting.example\nSubject: files\n"
        'Message-ID: <f@x>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nMany files.\n" + parts + "--b--\n"
    ).encode()
    taken = take(runtime, raw)
    assert taken.ticket_id is not None
    [text] = thread(runtime, taken.ticket_id)
    assert text.startswith("Many files.")
    assert f"f{MAX_ATTACHMENTS}.txt, f{MAX_ATTACHMENTS + 1}.txt" in text


def test_the_mail_key_is_made_once_and_kept(runtime: Runtime) -> None:
    with runtime.transaction(write=True) as (session, _):
        first = mail_key(session)
    with runtime.transaction(write=True) as (session, _):
        assert mail_key(session) == first
    assert len(first) == 32
