"""Factories: real rows made through the real services, one small function per thing."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date
from decimal import Decimal

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.demo import DEMO_SELLER
from ledgerdesk.db.models import User
from ledgerdesk.events.log import EventLog, EventRecord
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.invoices.parties import SellerService, seller_of
from ledgerdesk.invoices.pricing import LineInput
from ledgerdesk.invoices.service import InvoiceService, InvoiceView
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import TicketService
from tests.support import Caller


def system_work(runtime: Runtime) -> AbstractContextManager[Work]:
    """A unit of work of the system's own (what tests set up is nobody's doing)."""
    return runtime.work(Actor.SYSTEM, Origin("system"))


def make_user(runtime: Runtime, *, name: str = "John Smith", staff: bool = False) -> int:
    with system_work(runtime) as work:
        user = AccountService(work).create_user(name=name, email=None, staff=staff)
        return user.id


def make_key(
    runtime: Runtime,
    user_id: int,
    *,
    categories: Sequence[str] = (),
    ip_ranges: Sequence[str] = (),
    expires_on: date | None = None,
) -> tuple[int, Caller]:
    with system_work(runtime) as work:
        new = AccountService(work).create_key(
            user_id=user_id,
            categories=categories,
            ip_ranges=ip_ranges,
            expires_on=expires_on,
            note="test",
        )
        return new.key.id, Caller(user_id, new.secret)


def make_customer(
    runtime: Runtime,
    name: str = "John Smith",
    *,
    categories: Sequence[str] = (),
    ip_ranges: Sequence[str] = (),
    expires_on: date | None = None,
) -> Caller:
    """A customer with one API key, as the caller of the customer API."""
    user_id = make_user(runtime, name=name)
    _, caller = make_key(
        runtime, user_id, categories=categories, ip_ranges=ip_ranges, expires_on=expires_on
    )
    return caller


def make_invoice(
    runtime: Runtime,
    user_id: int,
    *,
    created_on: date,
    title: str = "Dell PowerEdge R410 / EU: Rotterdam",
    description: str = "Server Type: Dell PowerEdge R410\nLocation: EU: Rotterdam",
    amount_cents: int = 35000,
    vat_hundredths: int = 2100,
    pay_within_days: int = 30,
    paid_on: date | None = None,
) -> InvoiceView:
    prepare_invoicing(runtime, user_id)
    with system_work(runtime) as work:
        customer = work.session.get(User, user_id)
        assert customer is not None
        service = InvoiceService(work)
        view = service.issue(
            customer=customer,
            lines=[LineInput(title, Decimal(1), Decimal(amount_cents).scaleb(-2), vat_hundredths)],
            title=title,
            description=description,
            created_on=created_on,
            pay_within_days=pay_within_days,
        )
        if paid_on is not None:
            view = service.mark_paid(view.id, paid_on=paid_on)
        return view


# The seller every test's invoices name (the demo's).
SELLER: dict[str, str | None] = dict(DEMO_SELLER)


def prepare_invoicing(runtime: Runtime, user_id: int, *, country: str = "NL") -> None:
    """What issuing an invoice needs: the seller's details (set once) and the
    customer's billing country (a domestic customer of the Dutch seller by default)."""
    with system_work(runtime) as work:
        if seller_of(work.session) is None:
            SellerService(work).set(dict(SELLER), default_currency="EUR")
        customer = work.session.get(User, user_id)
        assert customer is not None
        if customer.country is None:
            AccountService(work).update_user(user_id, billing={"country": country})


def credit_invoice(
    runtime: Runtime,
    invoice_id: int,
    *,
    created_on: date,
    lines: Sequence[LineInput] | None = None,
    reason: str = "",
) -> InvoiceView:
    """A credit note for the whole invoice (or ``lines`` of it)."""
    with system_work(runtime) as work:
        return InvoiceService(work).credit(
            invoice_id, lines=lines, reason=reason, created_on=created_on
        )


def make_ticket(
    runtime: Runtime,
    user_id: int,
    *,
    title: str = "Server unreachable",
    content: str = "It stopped answering at 07:12.",
    reference: str = "",
    priority: int = 2,
) -> int:
    with system_work(runtime) as work:
        ticket = TicketService(work).create(
            customer_id=user_id,
            title=title,
            content=content,
            reference=reference,
            priority=priority,
            files=[],
        )
        return ticket.id


def staff_reply(runtime: Runtime, ticket_id: int, staff_id: int, content: str = "On it.") -> None:
    with system_work(runtime) as work:
        staff = work.session.get(User, staff_id)
        assert staff is not None
        work.actor = Actor.staff(staff_id)
        TicketService(work).reply(ticket_id, author=staff, content=content, files=[])


def force_close(runtime: Runtime, ticket_id: int) -> None:
    with system_work(runtime) as work:
        TicketService(work).force_close(ticket_id)


def recorded_events(runtime: Runtime) -> list[EventRecord]:
    """Every event in the log, oldest first."""
    with runtime.transaction(write=False) as (session, _):
        return EventLog(session).after(0, limit=100_000)
