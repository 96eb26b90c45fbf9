"""What each template of the console and the portal is given: one dataclass per page.

A page function returns ``Page(SomeContext(...), status)``; the context names its
template, and its fields are the template's variables, checked by mypy where the page
builds them. ``Frame`` is what every page gets besides (base.html's needs). A test
(tests/web/test_page_contexts.py) holds each template to its context: every name the
template reads is a field (or the frame's, or a global), and every field is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, ClassVar, Literal

from starlette.requests import Request

from ledgerdesk.accounts.people import CurrentSession
from ledgerdesk.db.models import (
    ApiKey,
    Invoice,
    MailAddress,
    MailFetcher,
    MailMessage,
    SavedReply,
    Ticket,
    User,
)
from ledgerdesk.invoices.service import InvoiceView, LineView, PaymentView, Receivables
from ledgerdesk.mail.addresses import AddedAddress
from ledgerdesk.mail.inbound import Inbound
from ledgerdesk.tickets.queries import Present, QueueRow, TicketRecord
from ledgerdesk.tickets.report import WeekRow
from ledgerdesk.tickets.service import ThreadView
from ledgerdesk.web.history import HistoryRow
from ledgerdesk.webhooks.service import AttemptView, DeliveryView, EndpointView

# A refused form's messages by field name; "_" for one about the form as a whole.
Errors = Mapping[str, str]
# What was typed into a form, by field name, to show it again.
Typed = Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class Context:
    """The variables of one template (``template``)."""

    template: ClassVar[str]

    def variables(self) -> dict[str, object]:
        return _variables(self)


@dataclass(frozen=True)
class Page:
    """A page to render, and its HTTP status."""

    context: Context
    status: int = 200

    @property
    def template(self) -> str:
        return self.context.template


@dataclass(frozen=True, kw_only=True)
class Frame:
    """What every page gets: the layout's needs (the person, the CSRF token of its
    forms, the notice, where it is) and the settings a form shows."""

    request: Request
    person: CurrentSession | None
    csrf_token: str
    flash: str | None
    path: str
    max_file_bytes: int

    def variables(self) -> dict[str, object]:
        return _variables(self)


# -- shared pages -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MessagePage(Context):
    template = "message.html"
    title: str
    text: str


@dataclass(frozen=True, kw_only=True)
class ConfirmPage(Context):
    """A question asked on a page of its own before a final change, posted from it."""

    template = "confirm.html"
    title: str
    subject: str
    text: str
    action: str
    fields: Mapping[str, str]
    button: str
    back: str


@dataclass(frozen=True, kw_only=True)
class SignInPage(Context):
    template = "signin.html"
    email: str = ""
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ForgotPage(Context):
    """Asking for a forgotten password's link."""

    template = "forgot.html"
    email: str = ""
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VerifyPage(Context):
    template = "verify.html"
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SetPasswordPage(Context):
    template = "set_password.html"
    name: str
    email: str | None
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ConfirmAddressPage(Context):
    """A mail address's confirmation, asked before it is given (the link's page)."""

    template = "confirm_address.html"
    address: str


@dataclass(frozen=True, kw_only=True)
class SecurityPage(Context):
    template = "security.html"
    staff: bool
    mail_notify: str  # staff: which mail about tickets they want
    has_totp: bool
    # Shown once, right after the second factor is turned on.
    recovery_codes: Sequence[str] | None
    # Staff without a second factor: the secret to enrol and its QR code (a data: URI).
    enrolment_secret: str | None
    qr: str | None
    errors: Errors


@dataclass(frozen=True)
class MessageForm:
    """A message form of the ticket's page: its problems and what was typed."""

    errors: Errors
    content: str


BLANK_FORM = MessageForm({}, "")


@dataclass(frozen=True)
class TicketWorkflow:
    """Staff's side of a ticket: who has it, whose turn it is, and the forms that change
    them (``errors``: the refused one's, by field)."""

    ticket: Ticket
    assignee: str | None  # the assignee's name
    staff: Sequence[tuple[int, str]]  # who it can be given to (enabled staff)
    ours: bool  # our turn now (waiting for the customer may have run out)
    tags: Sequence[str]
    saved: Sequence[tuple[int, str]]  # saved replies to insert: id, title
    present: Sequence[Present]  # the other staff on its page now (and who types there)
    since: int  # the event log's place when the page was drawn (its live updates')
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class TicketPage(Context):
    """A ticket's thread, for its customer (portal) or staff (console)."""

    template = "ticket.html"
    thread: ThreadView
    customer: User | None
    staff: bool
    base: str  # /console or /account: where the page's forms and links go
    reply: MessageForm
    note: MessageForm
    now: int
    history: Sequence[HistoryRow]
    # Staff: the received mail each reply came in as (reply id -> mail id).
    mail_of: Mapping[int, int]
    workflow: TicketWorkflow | None  # staff only


# -- the portal -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PortalHomePage(Context):
    template = "portal/home.html"
    tickets: Sequence[TicketRecord]
    answered: frozenset[int]  # open, staff spoke last: the customer's to read
    show: str  # all, answered, open, closed
    invoices: Sequence[InvoiceView]
    today: date


@dataclass(frozen=True, kw_only=True)
class PortalInvoicePage(Context):
    template = "portal/invoice.html"
    invoice: InvoiceView
    lines: Sequence[LineView]
    # A credit note's invoice, or an invoice's credit notes.
    corrects_number: str | None
    credit_notes: Sequence[InvoiceView]
    today: date


@dataclass(frozen=True, kw_only=True)
class BillingPage(Context):
    """A customer's billing details, as their invoices name them."""

    template = "portal/billing.html"
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class NewTicketPage(Context):
    """A new ticket: a customer's own, or (``staff``) one opened on a customer's behalf."""

    template = "new_ticket.html"
    values: Typed
    errors: Errors
    staff: bool


@dataclass(frozen=True, kw_only=True)
class PortalKeysPage(Context):
    template = "portal/keys.html"
    keys: Sequence[ApiKey]
    new_key: str | None  # a key's secret, shown once after it is made
    now: int
    values: Typed
    errors: Errors


# -- the console ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DashboardPage(Context):
    template = "console/dashboard.html"
    open_by_priority: Mapping[int, int]
    overdue: int  # open tickets past their service-level target
    due_soon: int  # and due within the hour
    oldest: TicketRecord | None
    receivables: Sequence[Receivables]  # one per currency
    now: int
    stopped_endpoints: Sequence[EndpointView]  # webhook endpoints the relay disabled
    failing_mailboxes: Sequence[MailFetcher]  # IMAP mailboxes that cannot be fetched


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters as the form shows them again."""

    status: str
    priority: int | None
    customer: int | None
    q: str
    sort: str
    owner: str = "any"  # any, mine, unassigned
    turn: str = "any"  # any, ours, customers
    tag: str = ""

    def link(self, **changed: object) -> dict[str, object]:
        """The query of this view with ``changed`` (for links that keep the rest)."""
        query: dict[str, object] = {
            "status": self.status,
            "priority": self.priority or "",
            "customer": self.customer or "",
            "q": self.q,
            "sort": self.sort,
            "owner": self.owner,
            "turn": self.turn,
            "tag": self.tag,
        }
        return query | changed


@dataclass(frozen=True, kw_only=True)
class QueuePage(Context):
    template = "console/queue.html"
    rows: Sequence[QueueRow]
    tags: Mapping[int, Sequence[str]]  # each row's
    staff: Sequence[tuple[int, str]]  # whom a selection can be given to
    open_by_priority: Mapping[int, int]
    filters: QueueFilters
    next_after: str | None  # the next page's position (the queue: keyset)
    next_page: int | None  # or its number (a search's results: best first, by offset)
    paged: bool
    searched: bool
    capped: bool  # the words are everywhere: the results come from the newest entries
    since: int  # the event log's place when the page was drawn (its live updates')
    now: int
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class CustomersPage(Context):
    template = "console/customers.html"
    customers: Sequence[User]
    next_after: int | None
    q: str
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class CustomerPage(Context):
    template = "console/customer.html"
    customer: User
    tickets: Sequence[QueueRow]
    invoices: Sequence[InvoiceView]
    keys: Sequence[ApiKey]
    history: Sequence[HistoryRow]
    new_key: str | None  # shown once after it is made
    link: str | None  # an invitation or reset link, shown once after it is made
    now: int
    today: date
    # The forms: a new key's, and the details form (name, email, billing details).
    values: Typed
    errors: Errors
    details: Typed
    details_errors: Errors
    # The customer's other mail addresses, and the form to add one.
    addresses: Sequence[AddedAddress]
    address_errors: Errors
    address_value: str


@dataclass(frozen=True)
class LineRow:
    """A line of an invoice form as typed."""

    description: str
    quantity: str
    unit_price: str
    vat: str

    @property
    def blank(self) -> bool:
        return not (self.description or self.unit_price)


@dataclass(frozen=True, kw_only=True)
class InvoicesPage(Context):
    template = "console/invoices.html"
    show: Literal["unpaid", "overdue"]
    invoices: Sequence[tuple[InvoiceView, str]]
    receivables: Sequence[Receivables]  # one per currency
    today: date
    # The issue form: its line rows (and how many it takes), the seller's currency.
    seller_set: bool
    default_currency: str
    rows: Sequence[LineRow]
    max_rows: int
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class InvoicePage(Context):
    """One invoice or credit note for staff: its lines, payments, credit notes and
    documents, and the forms that pay and credit it."""

    template = "console/invoice.html"
    invoice: InvoiceView
    lines: Sequence[LineView]
    customer: User
    payments: Sequence[PaymentView]
    credit_notes: Sequence[Invoice]
    corrects_number: str | None
    today: date
    credit_rows: Sequence[LineRow]
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class SellerPage(Context):
    template = "console/seller.html"
    is_set: bool
    values: Typed
    errors: Errors


def _variables(values: Context | Frame) -> dict[str, object]:
    return {f.name: getattr(values, f.name) for f in fields(values)}


# -- webhooks (both sides) --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WebhooksPage(Context):
    template = "webhooks.html"
    base: str  # /console/webhooks or /account/webhooks
    staff: bool
    endpoints: Sequence[EndpointView]
    owner_names: Mapping[int, str]
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class WebhookPage(Context):
    template = "webhook.html"
    base: str
    staff: bool
    endpoint: EndpointView
    owner_name: str | None
    deliveries: Sequence[DeliveryView]
    failed_only: bool
    event_filter: int | None
    new_secret: str | None
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class WebhookDeliveryPage(Context):
    template = "webhook_delivery.html"
    base: str
    endpoint: EndpointView
    delivery: DeliveryView
    attempts: Sequence[AttemptView]
    body: str  # what is delivered, laid out to read


@dataclass(frozen=True, kw_only=True)
class StaffPage(Context):
    """Who works here; for admins, the forms that invite, disable and make admins."""

    template = "console/staff.html"
    staff: Sequence[User]
    admin: bool  # the person looking is an admin
    me: int
    link: str | None  # an invitation or reset link, shown once after it is made
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class SavedRepliesPage(Context):
    """Saved replies, and the form for a new one or the one ``editing``."""

    template = "console/replies.html"
    replies: Sequence[SavedReply]
    editing: int | None
    placeholders: Sequence[str]
    values: Typed
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class ResponseTimesPage(Context):
    """Response times per week and agent (business minutes)."""

    template = "console/response_times.html"
    rows: Sequence[WeekRow]
    names: Mapping[int, str]
    weeks: int
    enabled: bool  # service levels are on
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class AuditPage(Context):
    """The audit trail (admins): its newest lines, of a user, from a moment on."""

    template = "console/audit.html"
    rows: Sequence[Mapping[str, Any]]
    user: int | None
    since: str
    shown: int
    errors: Errors


@dataclass(frozen=True, kw_only=True)
class MailMessagePage(Context):
    """One received mail: what it says (``mail``; ``problem`` when it cannot be read),
    where it went, and the decisions on it while it waits for staff."""

    template = "console/mail_message.html"
    message: MailMessage
    mail: Inbound | None
    problem: str | None
    waiting: bool
    named: Ticket | None  # the ticket a held mail names
    customer: User | None  # the sender's customer, if known
    errors: Errors
    values: Typed


@dataclass(frozen=True, kw_only=True)
class AddressesPage(Context):
    """A customer's own addresses for mail to support, and the form to add one."""

    template = "portal/addresses.html"
    account_email: str
    addresses: Sequence[AddedAddress]
    errors: Errors
    value: str


@dataclass(frozen=True, kw_only=True)
class MailPage(Context):
    template = "console/mail.html"
    show: Literal["waiting", "all"]
    messages: Sequence[MailMessage]
    failing: Sequence[MailAddress]
