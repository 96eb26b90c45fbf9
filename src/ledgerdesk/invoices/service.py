"""Invoice rules: numbering, amounts, and what a customer may read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session

from ledgerdesk.db.models import Invoice, User
from ledgerdesk.errors import NotFound, invalid
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.invoices.money import cents_to_decimal, hundredths_to_decimal, vat_cents
from ledgerdesk.invoices.queries import InvoiceQueries, InvoiceRecord
from ledgerdesk.invoices.repository import InvoiceRepository

DEFAULT_WINDOW = timedelta(days=30)
MAX_TITLE = 255
MAX_DESCRIPTION = 65535


@dataclass(frozen=True)
class InvoiceView:
    """An invoice with its derived amounts; money as exact Decimals."""

    id: int
    user_id: int
    number: str
    title: str
    description: str
    created_on: date
    pay_before: date
    amount_excl_vat: Decimal
    vat: Decimal
    vat_perc: Decimal
    amount_net: Decimal
    paid_on: date | None

    @property
    def status(self) -> Literal["paid", "unpaid"]:
        return "unpaid" if self.paid_on is None else "paid"

    @classmethod
    def of(cls, invoice: Invoice | InvoiceRecord) -> InvoiceView:
        vat = vat_cents(invoice.amount_excl_vat_cents, invoice.vat_perc_hundredths)
        return cls(
            id=invoice.id,
            user_id=invoice.user_id,
            number=invoice.number,
            title=invoice.title,
            description=invoice.description,
            created_on=invoice.created_on,
            pay_before=invoice.pay_before,
            amount_excl_vat=cents_to_decimal(invoice.amount_excl_vat_cents),
            vat=cents_to_decimal(vat),
            vat_perc=hundredths_to_decimal(invoice.vat_perc_hundredths),
            amount_net=cents_to_decimal(invoice.amount_excl_vat_cents + vat),
            paid_on=invoice.paid_on,
        )


def invoice_layout(view: InvoiceView) -> dict[str, object]:
    """An invoice as JSON lays it out everywhere outside the protocol's own answer (the
    admin CLI's --json, the event log): money as exact decimal strings, ISO dates. The
    protocol's ``InvoiceDetails`` uses the same names for what it carries."""
    return {
        "invoiceId": view.id,
        "userId": view.user_id,
        "number": view.number,
        "title": view.title,
        "description": view.description,
        "createdOn": view.created_on.isoformat(),
        "payBefore": view.pay_before.isoformat(),
        "amountExclVat": str(view.amount_excl_vat),
        "vat": str(view.vat),
        "vatPerc": str(view.vat_perc),
        "amountNet": str(view.amount_net),
        "status": view.status,
        "paidOn": None if view.paid_on is None else view.paid_on.isoformat(),
    }


def invoice_number(year: int, sequence: int) -> str:
    """``F26-0000042``: the year's last two digits and a gapless sequence."""
    return f"F{year % 100:02d}-{sequence:07d}"


class InvoiceReader:
    """What a customer may read of their invoices."""

    def __init__(self, queries: InvoiceQueries) -> None:
        self.queries = queries

    def ids_of_customer(
        self,
        user_id: int,
        *,
        status: int,
        date_start: date | None,
        date_end: date | None,
        today: date,
    ) -> list[int]:
        last = date_end if date_end is not None else today
        first = date_start if date_start is not None else today - DEFAULT_WINDOW
        if first > last:
            raise invalid("dateStart", "must not be after dateEnd")
        paid = None if status == -1 else status == 1
        return self.queries.ids_of_customer(user_id, paid=paid, first=first, last=last)

    def latest(self, user_id: int, *, limit: int = 200) -> list[InvoiceView]:
        """A customer's latest invoices, newest first."""
        return [InvoiceView.of(r) for r in self.queries.of_customer(user_id, limit=limit)]

    def details_for_customer(self, user_id: int, invoice_id: int) -> InvoiceView:
        invoice = self.queries.details_of_customer(user_id, invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} not found.")
        return InvoiceView.of(invoice)


@dataclass(frozen=True)
class Receivables:
    """What customers owe: unpaid invoices, and those of them past their due date."""

    unpaid_count: int
    unpaid_total: Decimal
    overdue_count: int
    overdue_total: Decimal


class StaffInvoiceReader:
    """What staff read of every customer's invoices."""

    def __init__(self, queries: InvoiceQueries) -> None:
        self.queries = queries

    def unpaid(self, *, overdue_on: date | None, limit: int = 500) -> list[tuple[InvoiceView, str]]:
        return [
            (InvoiceView.of(record), name)
            for record, name in self.queries.unpaid(overdue_on=overdue_on, limit=limit)
        ]

    def details(self, invoice_id: int) -> InvoiceView:
        invoice = self.queries.details(invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} not found.")
        return InvoiceView.of(invoice)

    def receivables(self, today: date) -> Receivables:
        """Totals including VAT, each invoice's VAT rounded as on the invoice itself."""
        unpaid = overdue = 0
        unpaid_count = overdue_count = 0
        for amount, vat_hundredths, pay_before in self.queries.unpaid_amounts():
            total = amount + vat_cents(amount, vat_hundredths)
            unpaid += total
            unpaid_count += 1
            if pay_before < today:
                overdue += total
                overdue_count += 1
        return Receivables(
            unpaid_count, cents_to_decimal(unpaid), overdue_count, cents_to_decimal(overdue)
        )


class InvoiceService:
    """Administration: creating invoices and marking them paid."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.repository = InvoiceRepository(work.session)

    # -- administration ---------------------------------------------------------------

    def create(
        self,
        *,
        customer: User,
        title: str,
        description: str,
        amount_excl_vat_cents: int,
        vat_perc_hundredths: int,
        created_on: date,
        pay_within_days: int,
    ) -> InvoiceView:
        if customer.is_staff:
            raise invalid("customer", "invoices belong to customers, not staff")
        title = title.strip()
        if not 1 <= len(title) <= MAX_TITLE:
            raise invalid("title", f"must be 1 to {MAX_TITLE} characters")
        if len(description) > MAX_DESCRIPTION:
            raise invalid("description", f"must be at most {MAX_DESCRIPTION} characters")
        if amount_excl_vat_cents < 0:
            raise invalid("amount_excl_vat", "must not be negative")
        if not 0 <= vat_perc_hundredths <= 10_000:
            raise invalid("vat_perc", "must be between 0 and 100")
        if not 0 <= pay_within_days <= 3650:
            raise invalid("pay_within_days", "must be between 0 and 3650")
        sequence = self.repository.take_sequence_number(created_on.year)
        invoice = self.repository.add(
            Invoice(
                user_id=customer.id,
                number=invoice_number(created_on.year, sequence),
                title=title,
                description=description,
                created_on=created_on,
                pay_before=created_on + timedelta(days=pay_within_days),
                amount_excl_vat_cents=amount_excl_vat_cents,
                vat_perc_hundredths=vat_perc_hundredths,
                paid_on=None,
            )
        )
        return self._recorded(EventType.INVOICE_ISSUED, invoice)

    def mark_paid(self, invoice_id: int, *, paid_on: date) -> InvoiceView:
        """Mark an invoice paid; an invoice already paid keeps its original date."""
        invoice = self.repository.get(invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} does not exist.")
        if invoice.paid_on is None:
            if paid_on < invoice.created_on:
                raise invalid("paid_on", "an invoice cannot be paid before it was created")
            invoice.paid_on = paid_on
            return self._recorded(EventType.INVOICE_PAID, invoice)
        return InvoiceView.of(invoice)

    def _recorded(self, kind: EventType, invoice: Invoice) -> InvoiceView:
        """The invoice as it now is, its event recorded with the whole of it."""
        view = InvoiceView.of(invoice)
        self.work.record(
            kind, subject_id=view.id, customer_id=view.user_id, payload=invoice_layout(view)
        )
        return view


def invoices_of(session: Session, user_id: int | None) -> list[InvoiceView]:
    """Every invoice (of one customer, or all), oldest first: the admin CLI's list."""
    return [InvoiceView.of(invoice) for invoice in InvoiceRepository(session).list(user_id)]
