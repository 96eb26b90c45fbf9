"""Where a received mail goes: the rules, as one pure function.

A mail **joins a ticket** only when one of these holds:

1. its ``In-Reply-To``/``References`` name a Message-ID ledgerdesk sent, with a valid
   signature (``mail.tags``): the reply to a notification;
2. it was sent to the ticket's signed reply address (``support+T.SIG@...``);
3. its subject carries the ticket's code (``[#482913]``) **and** its sender is the
   ticket's customer (one of the customer's addresses).

A mail that *names* a ticket but meets none of them (a code copied into a subject by
someone else, an unsigned plus-address, a forged Message-ID) never joins it: it opens a
ticket of its own for a known sender, or waits for staff (``Policy.unproven``). Without a
ticket named, a known customer's mail opens a new ticket; an unknown sender's is refused
with a reply, held for staff, or makes a new customer (``Policy.strangers``).

Mail from a staff member's own address (answering a notification by mail) is held for
the console: it is never posted as the ticket's customer.

Automatic mail (autoresponders, lists, delivery reports; ``Inbound.automatic``) and
mail carrying one of our own Message-IDs never joins, opens or answers anything: a
delivery report of our notification marks its recipient's address failing, the rest is
kept and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from ledgerdesk.mail.inbound import Inbound
from ledgerdesk.mail.tags import Tags

_CODE = re.compile(r"\[#(\d{4,12})\]")

Strangers = Literal["refuse", "hold", "create"]
Unproven = Literal["new", "hold"]


@dataclass(frozen=True)
class Policy:
    """What the provider chose: mail from unknown senders, and mail naming a ticket it
    may not join."""

    strangers: Strangers = "refuse"
    unproven: Unproven = "new"


@dataclass(frozen=True)
class TicketRef:
    id: int
    code: int
    customer_id: int


class Directory(Protocol):
    """What the rules look up (the database, in ``mail.service``)."""

    def customer_of(self, address: str) -> int | None:
        """The customer an address belongs to (theirs, or one they added)."""
        ...

    def is_staff(self, address: str) -> bool:
        """Whether the address is a staff member's own."""
        ...

    def ticket(self, ticket_id: int) -> TicketRef | None: ...

    def ticket_by_code(self, code: int) -> TicketRef | None: ...


@dataclass(frozen=True)
class Decision:
    """What to do with the mail, and why (shown in the console's mail log)."""

    action: Literal["join", "open", "hold", "refuse", "create_customer", "ignore", "bounce"]
    why: str
    ticket_id: int | None = None  # joined; held: the ticket it names, for staff to decide
    customer_id: int | None = None
    recipient_id: int | None = None  # a bounce: whose address failed


def decide(
    mail: Inbound, tags: Tags, directory: Directory, policy: Policy, support_address: str
) -> Decision:
    """Where ``mail`` goes (see the module's text)."""
    if mail.bounced_id is not None:
        tag = tags.read_message_id(mail.bounced_id)
        if tag is not None:
            return Decision(
                "bounce",
                "a delivery report of our notification",
                tag.ticket_id,
                recipient_id=tag.recipient_id,
            )
    if tags.is_ours(mail.message_id):
        return Decision("ignore", "our own message came back (a loop)")
    if mail.automatic is not None:
        return Decision("ignore", f"automatic mail ({mail.automatic})")
    if directory.is_staff(mail.sender):  # e.g. answering a notification by mail
        answered = next(
            (
                ticket
                for tag in map(tags.read_message_id, mail.thread_ids)
                if tag is not None and (ticket := directory.ticket(tag.ticket_id)) is not None
            ),
            None,
        )
        return Decision(
            "hold",
            "from a staff member: never posted as the customer (answer in the console)",
            None if answered is None else answered.id,
        )
    customer = directory.customer_of(mail.sender)
    named: TicketRef | None = None
    for message_id in mail.thread_ids:
        tag = tags.read_message_id(message_id)
        if tag is not None:
            ticket = directory.ticket(tag.ticket_id)
            if ticket is not None:
                return Decision(
                    "join", "a reply to our notification", ticket.id, ticket.customer_id
                )
    for address in mail.recipients:
        ticket_id = tags.read_reply_address(address, support_address)
        if ticket_id is not None:
            ticket = directory.ticket(ticket_id)
            if ticket is not None:
                return Decision(
                    "join", "sent to the ticket's reply address", ticket.id, ticket.customer_id
                )
        elif _unsigned_plus(address, support_address):
            named = named or _plus_ticket(address, directory)
    for code in _CODE.findall(mail.subject):
        ticket = directory.ticket_by_code(int(code))
        if ticket is None:
            continue
        if customer is not None and customer == ticket.customer_id:
            return Decision(
                "join",
                "the ticket's code, from the ticket's customer",
                ticket.id,
                ticket.customer_id,
            )
        named = named or ticket
    if named is not None:
        why = f"names ticket #{named.code} but is not from its customer or a reply to us"
        if policy.unproven == "hold" or customer is None:
            return Decision("hold", why, named.id, customer_id=customer)
        return Decision("open", why + ": a new ticket", customer_id=customer)
    if customer is not None:
        return Decision("open", "a new ticket from a customer", customer_id=customer)
    if policy.strangers == "create":
        return Decision("create_customer", "an unknown sender: a new customer")
    if policy.strangers == "hold":
        return Decision("hold", "an unknown sender")
    return Decision("refuse", "an unknown sender")


def _unsigned_plus(address: str, support_address: str) -> bool:
    local, _, domain = address.partition("@")
    support_local, _, support_domain = support_address.lower().partition("@")
    return domain == support_domain and local.startswith(support_local + "+")


def _plus_ticket(address: str, directory: Directory) -> TicketRef | None:
    tag = address.partition("@")[0].partition("+")[2].partition(".")[0]
    return directory.ticket(int(tag)) if tag.isdigit() else None
