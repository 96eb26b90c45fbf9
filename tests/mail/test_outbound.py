"""Mail ledgerdesk sends: composed from templates the provider can override, with the
headers that thread it and keep autoresponders quiet; and who is told of what."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from ledgerdesk.events.log import EventRecord
from ledgerdesk.mail.inbound import read
from ledgerdesk.mail.notifications import Choice, Notice, notices_of
from ledgerdesk.mail.outbound import File, Outgoing, Templates, compose
from ledgerdesk.mail.tags import Tags
from ledgerdesk.mail.threading import Policy, TicketRef, decide

TAGS = Tags(b"k" * 32, "hosting.example")
SUPPORT = "support@hosting.example"
TICKET = {"code": 482913, "title": "Server unreachable"}
REPLY_CONTEXT = {
    "customer_name": "Ann",
    "author_name": "Sam",
    "ticket": TICKET,
    "content": "We replaced the disk.",
    "left_out": [],
    "link": "https://desk.hosting.example/account/tickets/42",
}


def staff_reply(**changes: Any) -> Outgoing:
    values: dict[str, Any] = {
        "kind": "staff_reply",
        "to": "ann@example.com",
        "to_name": "Ann",
        "context": REPLY_CONTEXT,
        "ticket_id": 42,
        "recipient_id": 7,
        "in_reply_to": "a1@mail.example.com",
        "references": ["a0@mail.example.com"],
    }
    return Outgoing(**{**values, **changes})


def composed(outgoing: Outgoing, templates: Templates | None = None) -> Any:
    message = compose(
        outgoing,
        sender=SUPPORT,
        sender_name="Hosting Support",
        tags=TAGS,
        templates=templates or Templates(),
    )
    return BytesParser(policy=policy.default).parsebytes(message.as_bytes())


def test_a_notification_threads_and_keeps_autoresponders_quiet() -> None:
    message = composed(staff_reply())
    assert message["Subject"] == "[#482913] Server unreachable"
    assert message["To"] == "Ann <ann@example.com>"
    tag = TAGS.read_message_id(message["Message-ID"])
    assert (tag.ticket_id, tag.recipient_id) == (42, 7)  # type: ignore[union-attr]
    assert message["In-Reply-To"] == "<a1@mail.example.com>"
    assert message["References"] == "<a0@mail.example.com> <a1@mail.example.com>"
    assert TAGS.read_reply_address(message["Reply-To"], SUPPORT) == 42
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "We replaced the disk." in text
    assert "Reply to this mail to answer" in text
    assert "We replaced the disk." in html


def test_html_is_escaped_and_text_is_not() -> None:
    context = {**REPLY_CONTEXT, "content": "<script>x</script> & more"}
    message = composed(staff_reply(context=context))
    assert "<script>x</script> & more" in message.get_body(("plain",)).get_content()
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in message.get_body(("html",)).get_content()


def test_files_are_attached() -> None:
    pdf = File("F26-0000042.pdf", "application/pdf", b"%PDF-1.7 ...")
    message = composed(
        Outgoing(
            kind="invoice_issued",
            to="ann@example.com",
            to_name="Ann",
            context={
                "customer_name": "Ann",
                "link": "https://x/",
                "invoice": {
                    "credit_note": False,
                    "number": "F26-0000042",
                    "total": "121.00",
                    "currency": "EUR",
                    "pay_before": "2026-12-30",
                },
            },
            files=[pdf],
        )
    )
    assert message["Subject"] == "Invoice F26-0000042"
    [attached] = list(message.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("F26-0000042.pdf", pdf.data)
    assert message["Message-ID"].endswith("@hosting.example>")
    assert "Reply-To" not in message


def test_the_provider_overrides_a_template_in_the_data_directory(tmp_path: Path) -> None:
    folder = tmp_path / "mail-templates"
    folder.mkdir()
    (folder / "staff_reply.txt").write_text(
        "Subject: Antwort zu #{{ ticket.code }}\nHallo {{ customer_name }}!\n{{ content }}\n"
    )
    message = composed(staff_reply(), Templates(tmp_path))
    assert message["Subject"] == "Antwort zu #482913"
    assert message.get_body(("plain",)).get_content().startswith("Hallo Ann!")
    (folder / "ticket_closed.txt").write_text("no subject line\n")
    with pytest.raises(ValueError, match="must start with a Subject: line"):
        composed(staff_reply(kind="ticket_closed"), Templates(tmp_path))


def test_the_customers_reply_to_a_notification_finds_its_ticket_without_the_quote() -> None:
    notification = composed(staff_reply())
    quoted = "\n".join(
        "> " + line for line in notification.get_body(("plain",)).get_content().splitlines()
    )
    reply = (
        f"From: Ann <ann@example.com>\nTo: {notification['Reply-To']}\n"
        f"Subject: Re: {notification['Subject']}\nMessage-ID: <r@example.com>\n"
        f"In-Reply-To: {notification['Message-ID']}\nReferences: {notification['Message-ID']}\n\n"
        "It works again, thanks!\n\n"
        f"On Mon, 30 Nov 2026 at 12:00, Hosting Support <{SUPPORT}> wrote:\n{quoted}\n"
    ).encode()
    mail = read(reply)
    assert mail.reply == "It works again, thanks!"

    class One:
        def customer_of(self, address: str) -> int | None:
            return 7 if address == "ann@example.com" else None

        def is_staff(self, address: str) -> bool:
            return False

        def ticket(self, ticket_id: int) -> TicketRef | None:
            return TicketRef(42, 482913, 7) if ticket_id == 42 else None

        def ticket_by_code(self, code: int) -> TicketRef | None:
            return None

    decided = decide(mail, TAGS, One(), Policy(), SUPPORT)
    assert (decided.action, decided.ticket_id) == ("join", 42)


# -- who is told ------------------------------------------------------------------------


@dataclass
class Team:
    chosen: dict[int, Choice] = field(default_factory=lambda: {1: "all", 2: "own", 3: "none"})
    helped_pairs: set[tuple[int, int]] = field(default_factory=lambda: {(2, 7)})

    def choices(self) -> list[tuple[int, Choice]]:
        return list(self.chosen.items())

    def helped(self, staff_id: int, customer_id: int) -> bool:
        return (staff_id, customer_id) in self.helped_pairs


def event(
    kind: str, actor: tuple[str, int | None], customer: int = 7, **payload: Any
) -> EventRecord:
    return EventRecord(
        id=100,
        type=kind,
        created_at=0,
        door="api",
        actor_kind=actor[0],
        actor_id=actor[1],
        key_id=None,
        customer_id=customer,
        subject_id=42,
        payload=payload,
        client_address=None,
        request_id=None,
    )


def kinds(found: list[Notice]) -> list[tuple[str, int]]:
    return [(n.kind, n.recipient_id) for n in found]


def test_customers_hear_of_staff_replies_closures_and_invoices() -> None:
    team = Team()
    assert kinds(notices_of(event("ticket.replied", ("staff", 1), by="staff"), team)) == [
        ("staff_reply", 7)
    ]
    assert kinds(notices_of(event("ticket.closed", ("staff", 1)), team)) == [("ticket_closed", 7)]
    assert kinds(notices_of(event("ticket.closed", ("customer", 7)), team)) == []  # their own
    assert kinds(notices_of(event("invoice.issued", ("system", None)), team)) == [
        ("invoice_issued", 7)
    ]
    assert kinds(notices_of(event("credit_note.issued", ("system", None)), team)) == [
        ("invoice_issued", 7)
    ]
    assert kinds(notices_of(event("ticket.note_added", ("staff", 1)), team)) == []


def test_staff_hear_as_they_chose_and_never_of_their_own_doing() -> None:
    team = Team()
    created = notices_of(event("ticket.created", ("customer", 7)), team)
    assert kinds(created) == [("new_ticket", 1), ("new_ticket", 2)]  # 2 answered 7 before
    other = notices_of(event("ticket.created", ("customer", 8), customer=8), team)
    assert kinds(other) == [("new_ticket", 1)]
    replied = notices_of(event("ticket.replied", ("customer", 7), by="customer"), team)
    assert kinds(replied) == [("customer_reply", 1), ("customer_reply", 2)]
    staffs_own = notices_of(event("ticket.created", ("staff", 1)), team)
    assert kinds(staffs_own) == []  # staff opening a ticket for a customer tell nobody
