"""The kinds of events, and who can cause them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class EventType(StrEnum):
    """What happened. ``<subject>.<what happened to it>``; the subject's id is the
    event's ``subject_id`` (a ticket's, an invoice's, a key's, a user's)."""

    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DISABLED = "customer.disabled"
    CUSTOMER_ENABLED = "customer.enabled"
    # A customer's other mail addresses (mail from a confirmed one threads as theirs)
    CUSTOMER_ADDRESS_ADDED = "customer.address_added"
    CUSTOMER_ADDRESS_CONFIRMED = "customer.address_confirmed"
    CUSTOMER_ADDRESS_REMOVED = "customer.address_removed"
    STAFF_CREATED = "staff.created"
    STAFF_UPDATED = "staff.updated"
    STAFF_DISABLED = "staff.disabled"
    STAFF_ENABLED = "staff.enabled"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    TICKET_CREATED = "ticket.created"
    TICKET_REPLIED = "ticket.replied"
    TICKET_NOTE_ADDED = "ticket.note_added"
    TICKET_CLOSED = "ticket.closed"
    TICKET_REOPENED = "ticket.reopened"
    TICKET_ASSIGNED = "ticket.assigned"  # staff's: never to a customer's endpoint
    TICKET_PRIORITY_CHANGED = "ticket.priority_changed"
    TICKET_PENDING = "ticket.pending"  # waiting for the customer until a moment
    TICKET_MERGED = "ticket.merged"  # another ticket's messages moved into this one
    TICKET_TAGGED = "ticket.tagged"  # staff's labels: never to a customer's endpoint
    INVOICE_ISSUED = "invoice.issued"
    INVOICE_PAID = "invoice.paid"
    CREDIT_NOTE_ISSUED = "credit_note.issued"
    PAYMENT_RECORDED = "payment.recorded"  # its subject is the invoice it pays
    SELLER_UPDATED = "seller.updated"
    PASSWORD_LINK_CREATED = "password.link_created"  # noqa: S105 (a name, not a password)
    PASSWORD_CHANGED = "password.changed"  # noqa: S105
    # Someone asked for a forgotten password's link to the account's address.
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105
    SECOND_FACTOR_ENABLED = "second_factor.enabled"
    SECOND_FACTOR_DISABLED = "second_factor.disabled"
    SIGNIN_SUCCEEDED = "signin.succeeded"
    SIGNOUT_SUCCEEDED = "signout.succeeded"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_ENABLED = "webhook.enabled"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # noqa: S105 (a name, not a secret)
    WEBHOOK_REPLAYED = "webhook.replayed"
    WEBHOOK_TESTED = "webhook.tested"  # delivered to its own endpoint only
    SAVED_REPLY_CREATED = "saved_reply.created"
    SAVED_REPLY_UPDATED = "saved_reply.updated"
    SAVED_REPLY_DELETED = "saved_reply.deleted"
    MAIL_RECEIVED = "mail.received"  # a mail that joined or opened no ticket (held, ...)
    MAIL_DISMISSED = "mail.dismissed"  # staff decided a mail of the queue needs nothing

    @property
    def subject(self) -> str:
        """What the subject id names: ``ticket``, ``invoice`` (a credit note is one too,
        and a payment's subject is the invoice it pays), ``api_key``, ``seller`` or
        ``webhook`` (an endpoint), ``mail`` (a received mail), ``saved_reply`` or
        ``user``."""
        head = self.value.partition(".")[0]
        if head in ("credit_note", "payment"):
            return "invoice"
        return (
            head
            if head in ("ticket", "invoice", "api_key", "seller", "webhook", "mail", "saved_reply")
            else "user"
        )


# The ways into ledgerdesk. "web" is a page before anyone signed in (sign-in, a password
# link); its events are recorded as the console's or the portal's, by who acted.
Door = Literal["api", "console", "portal", "web", "cli", "mail", "replay", "system"]
DOORS: tuple[str, ...] = ("api", "console", "portal", "cli", "mail", "replay", "system")

# A visitor is someone not (yet) known: the events of a sign-in or of a password link
# name the person they establish instead.
ActorKind = Literal["customer", "staff", "system", "visitor"]
