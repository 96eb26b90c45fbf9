"""Who is told of an event by mail, and with which kind of mail.

- A customer hears of a staff reply to their ticket (``staff_reply``; a ticket staff
  opened for them is one too), of their ticket
  closed by someone else (``ticket_closed``; not when the staff reply that closed it
  told them already), and of an invoice or a credit note issued
  to them (``invoice_issued``, its PDF attached).
- Staff hear of a new ticket (``new_ticket``) and of a customer's reply
  (``customer_reply``) as each chose in the console: ``all``, ``own`` (only customers
  whose tickets they have answered before) or ``none``.
- An address a customer added hears, once per adding, a link that confirms it
  (``address_confirm``): the one mail about a write that goes to whoever made it, since
  it goes to the new address, not to them.
- A staff member named with ``@`` in an internal note hears of it (``mention``), whatever
  they chose: it was written to them.
- Whoever asked for a forgotten password's link gets it at the account's address
  (``password_reset``).
- Nobody hears of what they did themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ledgerdesk.events.log import EventRecord

Choice = Literal["all", "own", "none"]
CHOICES: tuple[Choice, ...] = ("all", "own", "none")


@dataclass(frozen=True)
class Notice:
    kind: str
    recipient_id: int
    event_id: int


class Staff(Protocol):
    def choices(self) -> Sequence[tuple[int, Choice]]:
        """Every enabled staff member and what they chose."""
        ...

    def helped(self, staff_id: int, customer_id: int) -> bool:
        """Whether the staff member has answered a ticket of the customer."""
        ...


def notices_of(event: EventRecord, staff: Staff) -> list[Notice]:
    """The mail an event makes (see the module's text)."""
    customer = event.customer_id
    actor = event.actor_id
    kind = event.type
    data = event.payload
    found: list[Notice] = []
    if kind == "password.reset_requested" and event.subject_id is not None:
        found.append(Notice("password_reset", event.subject_id, event.id))
    if kind == "customer.address_added" and customer is not None and not data.get("confirmed"):
        found.append(Notice("address_confirm", customer, event.id))
    if customer is not None and customer != actor:
        if kind in ("ticket.replied", "ticket.created") and data.get("by") == "staff":
            found.append(Notice("staff_reply", customer, event.id))
        elif (
            kind == "ticket.closed" and not data.get("afterReply") and not data.get("mergedIntoId")
        ):
            found.append(Notice("ticket_closed", customer, event.id))
        elif kind in ("invoice.issued", "credit_note.issued"):
            found.append(Notice("invoice_issued", customer, event.id))
    if kind == "ticket.note_added":  # staff named in a note with @
        for staff_id in data.get("mentions") or []:
            if staff_id != actor:
                found.append(Notice("mention", int(staff_id), event.id))
    by_customer = event.actor_kind == "customer"
    staff_kind = None
    if kind == "ticket.created" and by_customer:
        staff_kind = "new_ticket"
    elif kind == "ticket.replied" and data.get("by") == "customer":
        staff_kind = "customer_reply"
    if staff_kind is not None and customer is not None:
        for staff_id, choice in staff.choices():
            if staff_id == actor or choice == "none":
                continue
            if choice == "own" and not staff.helped(staff_id, customer):
                continue
            found.append(Notice(staff_kind, staff_id, event.id))
    return found
