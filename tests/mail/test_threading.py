"""Where received mail goes: joins a ticket only by a signed reference, the signed
reply address, or the code from the ticket's customer; everything else never joins."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ledgerdesk.mail.inbound import read
from ledgerdesk.mail.tags import Tags
from ledgerdesk.mail.threading import Decision, Policy, TicketRef, decide
from tests.mail.corpus import CASES

SUPPORT = "support@hosting.example"
TAGS = Tags(b"k" * 32, "hosting.example")
ANN, BOB = 7, 8
TICKET = TicketRef(id=42, code=482913, customer_id=ANN)


@dataclass
class Directory:
    addresses: dict[str, int] = field(
        default_factory=lambda: {
            "ann@example.com": ANN,
            "ann@home.example": ANN,
            "bob@example.com": BOB,
        }
    )
    tickets: dict[int, TicketRef] = field(default_factory=lambda: {TICKET.id: TICKET})

    staff: set[str] = field(default_factory=lambda: {"sam@hosting.example"})

    def customer_of(self, address: str) -> int | None:
        return self.addresses.get(address)

    def is_staff(self, address: str) -> bool:
        return address in self.staff

    def ticket(self, ticket_id: int) -> TicketRef | None:
        return self.tickets.get(ticket_id)

    def ticket_by_code(self, code: int) -> TicketRef | None:
        return next((t for t in self.tickets.values() if t.code == code), None)


def mail(
    sender: str = "ann@example.com",
    subject: str = "Hello",
    to: str = SUPPORT,
    extra: str = "",
    body: str = "Hi.",
) -> bytes:
    return (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\nMessage-ID: <x1@example.com>\n"
        f"{extra}\n{body}\n"
    ).encode()


DEFAULT = Policy()


def where(raw: bytes, policy: Policy = DEFAULT) -> Decision:
    return decide(read(raw), TAGS, Directory(), policy, SUPPORT)


def test_a_reply_to_our_notification_joins_its_ticket_whoever_replies() -> None:
    ours = TAGS.message_id(TICKET.id, ANN)
    decided = where(mail("colleague@example.com", extra=f"In-Reply-To: <{ours}>\n"))
    assert (decided.action, decided.ticket_id) == ("join", TICKET.id)
    decided = where(mail(extra=f"References: <other@x> <{ours}>\n"))
    assert (decided.action, decided.ticket_id) == ("join", TICKET.id)


def test_a_forged_or_altered_message_id_never_joins() -> None:
    ours = TAGS.message_id(TICKET.id, ANN)
    altered = ours.replace("ld.42.", "ld.43.")
    forged = Tags(b"x" * 32, "hosting.example").message_id(TICKET.id, ANN)
    for wrong in (altered, forged, "ld.42.7.abc.def@hosting.example"):
        decided = where(mail("eve@evil.example", extra=f"In-Reply-To: <{wrong}>\n"))
        assert decided.action != "join"


def test_the_signed_reply_address_joins_and_an_unsigned_one_does_not() -> None:
    address = TAGS.reply_address(SUPPORT, TICKET.id)
    assert where(mail("anyone@example.org", to=address)).ticket_id == TICKET.id
    unsigned = where(mail("bob@example.com", to="support+42@hosting.example"))
    assert (unsigned.action, unsigned.ticket_id) == ("open", None)
    forged = where(mail("eve@evil.example", to="support+42.aaaaaaaaaaaaaaaaaaaa@hosting.example"))
    assert forged.action == "hold"


def test_the_code_joins_only_from_the_tickets_customer() -> None:
    subject = "Re: [#482913] Server unreachable"
    assert where(mail("ann@example.com", subject)).ticket_id == TICKET.id
    assert where(mail("ann@home.example", subject)).ticket_id == TICKET.id  # added address
    stranger = where(mail("bob@example.com", subject))
    assert (stranger.action, stranger.ticket_id, stranger.customer_id) == ("open", None, BOB)
    assert "names ticket #482913" in stranger.why
    # Held, never joined: the ticket named is kept for the staff who decide.
    held = where(mail("bob@example.com", subject), Policy(unproven="hold"))
    assert (held.action, held.ticket_id) == ("hold", TICKET.id)
    unknown = where(mail("eve@evil.example", subject))
    assert (unknown.action, unknown.ticket_id) == ("hold", TICKET.id)


def test_a_known_customer_opens_a_ticket_and_strangers_go_as_the_provider_chose() -> None:
    assert where(mail("bob@example.com")).action == "open"
    assert where(mail("eve@evil.example")).action == "refuse"
    assert where(mail("eve@evil.example"), Policy(strangers="hold")).action == "hold"
    assert where(mail("eve@evil.example"), Policy(strangers="create")).action == ("create_customer")


def test_automatic_mail_and_our_own_never_join_or_open() -> None:
    ours = TAGS.message_id(TICKET.id, ANN)
    auto = where(mail(extra=f"Auto-Submitted: auto-replied\nIn-Reply-To: <{ours}>\n"))
    assert auto.action == "ignore"
    looped = decide(
        read(mail().replace(b"<x1@example.com>", f"<{ours}>".encode())),
        TAGS,
        Directory(),
        Policy(),
        SUPPORT,
    )
    assert (looped.action, looped.why) == ("ignore", "our own message came back (a loop)")


@pytest.mark.parametrize("case", [c for c in CASES if c.bounced], ids=lambda c: c.name)
def test_a_bounce_of_our_notification_names_the_failing_recipient(case: object) -> None:
    ours = TAGS.message_id(TICKET.id, ANN)
    raw = case.raw.replace(
        b"ld.42.7.a1b2c3d4e5f6.SIG@support.hosting.example",  # type: ignore[attr-defined]
        ours.encode(),
    )
    decided = decide(read(raw), TAGS, Directory(), Policy(), SUPPORT)
    assert (decided.action, decided.ticket_id, decided.recipient_id) == ("bounce", TICKET.id, ANN)


def test_tags_are_checked_for_their_domain_and_shape() -> None:
    ours = TAGS.message_id(5, 9)
    assert TAGS.read_message_id(ours) is not None
    assert TAGS.read_message_id(ours.replace("hosting.example", "other.example")) is None
    assert TAGS.read_message_id("<" + ours + ">") is not None
    assert TAGS.read_message_id("not-an-id") is None
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Tags(b"short", "x.example")


def test_staff_answering_a_notification_by_mail_is_held_never_posted_as_the_customer() -> None:
    ours = TAGS.message_id(TICKET.id, 99)
    held = where(mail("sam@hosting.example", "Re: [#482913] x", extra=f"In-Reply-To: <{ours}>"))
    assert (held.action, held.ticket_id, held.customer_id) == ("hold", TICKET.id, None)
    assert "staff" in held.why
