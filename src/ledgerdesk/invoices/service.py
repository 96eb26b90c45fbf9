"""Invoice rules: issuing invoices and credit notes (numbered gaplessly per series),
payments, and what a customer may read.

An issued invoice is never edited: what changes afterwards is only what has been paid
and credited of it, and the day it was settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from ledgerdesk.db.models import Invoice, InvoiceLine, Payment, User
from ledgerdesk.errors import InvalidState, NotFound, ParamError, invalid, problems_error
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.invoices.money import MAX_CENTS, Currency, hundredths_to_decimal, plain
from ledgerdesk.invoices.parties import buyer_of, require_seller, treatment
from ledgerdesk.invoices.pricing import (
    MAX_LINE_DESCRIPTION,
    MAX_LINES,
    LineInput,
    Priced,
    Treatment,
    VatCategory,
    price,
)
from ledgerdesk.invoices.queries import InvoiceQueries, InvoiceRecord, LineRecord
from ledgerdesk.invoices.repository import InvoiceRepository

DEFAULT_WINDOW = timedelta(days=30)
MAX_TITLE = 255
MAX_DESCRIPTION = 65535
MAX_REASON = 500
E4 = Decimal(10_000)

Kind = Literal["invoice", "credit_note"]
SERIES: dict[str, str] = {"invoice": "F", "credit_note": "C"}


@dataclass(frozen=True)
class InvoiceView:
    """An invoice or a credit note with its amounts as exact Decimals in its currency."""

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
    amount_net: Decimal  # including VAT: the protocol's name for it
    paid_on: date | None
    kind: Kind
    currency: str
    amount_paid: Decimal
    amount_credited: Decimal
    corrects_id: int | None

    @property
    def status(self) -> Literal["paid", "unpaid"]:
        return "unpaid" if self.paid_on is None else "paid"

    @property
    def amount_due(self) -> Decimal:
        return max(self.amount_net - self.amount_paid - self.amount_credited, Decimal(0))

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @classmethod
    def of(cls, invoice: Invoice | InvoiceRecord) -> InvoiceView:
        currency = Currency.of(invoice.currency)
        return cls(
            id=invoice.id,
            user_id=invoice.user_id,
            number=invoice.number,
            title=invoice.title,
            description=invoice.description,
            created_on=invoice.created_on,
            pay_before=invoice.pay_before,
            amount_excl_vat=currency.amount(invoice.amount_excl_vat_cents),
            vat=currency.amount(invoice.vat_cents),
            vat_perc=hundredths_to_decimal(invoice.vat_perc_hundredths),
            amount_net=currency.amount(invoice.amount_excl_vat_cents + invoice.vat_cents),
            paid_on=invoice.paid_on,
            kind="credit_note" if invoice.kind == "credit_note" else "invoice",
            currency=currency.code,
            amount_paid=currency.amount(invoice.paid_cents),
            amount_credited=currency.amount(invoice.credited_cents),
            corrects_id=invoice.corrects_id,
        )


@dataclass(frozen=True)
class LineView:
    description: str
    quantity: Decimal
    unit_price: Decimal
    category: VatCategory
    vat_perc: Decimal
    amount_excl_vat: Decimal

    @classmethod
    def of(cls, line: InvoiceLine | LineRecord, currency: Currency) -> LineView:
        return cls(
            description=line.description,
            quantity=Decimal(line.quantity_e4) / E4,
            unit_price=Decimal(line.unit_price_e4) / E4,
            category=VatCategory(line.category),
            vat_perc=hundredths_to_decimal(line.rate),
            amount_excl_vat=currency.amount(line.net_cents),
        )


@dataclass(frozen=True)
class PaymentView:
    id: int
    paid_on: date
    amount: Decimal
    method: str
    reference: str


@dataclass(frozen=True)
class InvoiceDetails:
    """An invoice with its lines, and its credit notes (or, for a credit note, the
    number of the invoice it corrects)."""

    view: InvoiceView
    lines: Sequence[LineView]
    credit_note_ids: Sequence[int]


def invoice_layout(view: InvoiceView) -> dict[str, object]:
    """An invoice as JSON lays it out everywhere outside the protocol's own answer (the
    admin CLI's --json, the event log): money as exact decimal strings, ISO dates. The
    protocol's ``InvoiceDetails`` uses the same names for what it carries."""
    return {
        "invoiceId": view.id,
        "userId": view.user_id,
        "number": view.number,
        "documentType": "creditNote" if view.is_credit_note else "invoice",
        "title": view.title,
        "description": view.description,
        "createdOn": view.created_on.isoformat(),
        "payBefore": view.pay_before.isoformat(),
        "currency": view.currency,
        "amountExclVat": str(view.amount_excl_vat),
        "vat": str(view.vat),
        "vatPerc": str(view.vat_perc),
        "amountNet": str(view.amount_net),
        "amountPaid": str(view.amount_paid),
        "amountCredited": str(view.amount_credited),
        "amountDue": str(view.amount_due),
        "status": view.status,
        "paidOn": None if view.paid_on is None else view.paid_on.isoformat(),
        "correctsInvoiceId": view.corrects_id,
    }


def line_layout(line: LineView) -> dict[str, object]:
    return {
        "description": line.description,
        "quantity": plain(line.quantity),
        "unitPrice": plain(line.unit_price),
        "vatCategory": line.category.value,
        "vatPerc": str(line.vat_perc),
        "amountExclVat": str(line.amount_excl_vat),
    }


def document_number(kind: Kind, year: int, sequence: int) -> str:
    """``F26-0000042`` (an invoice), ``C26-0000007`` (a credit note): the series, the
    year's last two digits and a gapless sequence."""
    return f"{SERIES[kind]}{year % 100:02d}-{sequence:07d}"


class InvoiceReader:
    """What a customer may read of their invoices and credit notes."""

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
        kind: Kind | None = "invoice",
    ) -> list[int]:
        last = date_end if date_end is not None else today
        first = date_start if date_start is not None else today - DEFAULT_WINDOW
        if first > last:
            raise invalid("dateStart", "must not be after dateEnd")
        paid = None if status == -1 else status == 1
        return self.queries.ids_of_customer(user_id, paid=paid, first=first, last=last, kind=kind)

    def latest(self, user_id: int, *, limit: int = 200) -> list[InvoiceView]:
        """A customer's latest invoices and credit notes, newest first."""
        return [InvoiceView.of(r) for r in self.queries.of_customer(user_id, limit=limit)]

    def details_for_customer(self, user_id: int, invoice_id: int) -> InvoiceView:
        invoice = self.queries.details_of_customer(user_id, invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} not found.")
        return InvoiceView.of(invoice)

    def details_with_lines(self, user_id: int, invoice_id: int) -> InvoiceDetails:
        """A customer's invoice or credit note and its lines (one read; no credit note
        ids: the protocol's answer lists none, see ``with_lines``)."""
        record, lines = self.records_with_lines(user_id, invoice_id)
        view = InvoiceView.of(record)
        currency = Currency.of(view.currency)
        return InvoiceDetails(view, [LineView.of(line, currency) for line in lines], ())

    def records_with_lines(
        self, user_id: int, invoice_id: int
    ) -> tuple[InvoiceRecord, list[LineRecord]]:
        """The rows of ``details_with_lines``, as read (the protocol lays them out)."""
        found = self.queries.details_with_lines(user_id, invoice_id)
        if found is None:
            raise NotFound(f"Invoice {invoice_id} not found.")
        return found

    def with_lines(self, view: InvoiceView) -> InvoiceDetails:
        """The invoice's lines and credit notes (``view`` read through this reader, so
        already scoped to its owner)."""
        currency = Currency.of(view.currency)
        lines = [LineView.of(line, currency) for line in self.queries.lines_of(view.id)]
        credit_notes = [] if view.is_credit_note else self.queries.credit_note_ids(view.id)
        return InvoiceDetails(view, lines, credit_notes)


@dataclass(frozen=True)
class Receivables:
    """What customers owe in one currency: unpaid invoices, and those of them past
    their due date."""

    currency: str
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

    def receivables(self, today: date) -> list[Receivables]:
        """What is still due of unpaid invoices (after payments and credit notes), per
        currency, the most common first."""
        totals: dict[str, list[int]] = {}
        for currency, due, pay_before in self.queries.unpaid_amounts():
            row = totals.setdefault(currency, [0, 0, 0, 0])
            row[0] += 1
            row[1] += due
            if pay_before < today:
                row[2] += 1
                row[3] += due
        ordered = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
        return [
            Receivables(code, n, Currency.of(code).amount(t), on, Currency.of(code).amount(ot))
            for code, (n, t, on, ot) in ordered
        ]


class InvoiceService:
    """Administration: issuing invoices and credit notes, recording payments."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.repository = InvoiceRepository(work.session)

    def issue(
        self,
        *,
        customer: User,
        lines: Sequence[LineInput],
        created_on: date,
        pay_within_days: int,
        currency: str | None = None,
        title: str | None = None,
        description: str = "",
        exemption_reason: str | None = None,
        exchange_rate: Decimal | None = None,
    ) -> InvoiceView:
        """Issue an invoice to ``customer`` with the next number of its year. The seller's
        details and the customer's billing country must be set; the VAT treatment
        follows from them (``parties.treatment``)."""
        if customer.is_staff:
            raise invalid("customer", "invoices belong to customers, not staff")
        seller = require_seller(self.work.session)
        problems: list[ParamError] = []
        buyer = buyer_of(customer)
        if buyer is None:
            raise invalid(
                "customer",
                f"customer {customer.id} has no billing country; set it first "
                f"(ledgerdesk admin user update {customer.id} --country CC)",
            )
        try:
            money = Currency.of(currency) if currency else seller.currency
        except ValueError as exc:
            raise invalid("currency", str(exc)) from None
        problems += _line_problems(lines)
        if not 0 <= pay_within_days <= 3650:
            problems.append(ParamError("pay_within_days", "must be between 0 and 3650"))
        if len(description) > MAX_DESCRIPTION:
            problems.append(
                ParamError("description", f"must be at most {MAX_DESCRIPTION} characters")
            )
        title = (title if title is not None else _title_of(lines)).strip()
        if not 1 <= len(title) <= MAX_TITLE:
            problems.append(ParamError("title", f"must be 1 to {MAX_TITLE} characters"))
        how = treatment(seller.party, buyer)
        exempt = how is Treatment.DOMESTIC and any(line.rate is None for line in lines)
        reason = (exemption_reason or "").strip() or None
        if exempt and reason is None:
            problems.append(ParamError("exemption_reason", "is required for lines exempt from VAT"))
        elif reason is not None and not exempt:
            problems.append(
                ParamError("exemption_reason", "is only for invoices with lines exempt from VAT")
            )
        elif reason is not None and len(reason) > MAX_REASON:
            problems.append(
                ParamError("exemption_reason", f"must be at most {MAX_REASON} characters")
            )
        foreign = money != seller.currency
        if foreign and exchange_rate is None:
            problems.append(
                ParamError(
                    "exchange_rate",
                    f"is required for an invoice in {money.code}: the seller accounts for "
                    f"VAT in {seller.currency.code}",
                )
            )
        elif not foreign and exchange_rate is not None:
            problems.append(
                ParamError(
                    "exchange_rate",
                    f"is only for invoices in another currency than {seller.currency.code}",
                )
            )
        if problems:
            raise problems_error(problems)
        priced = price(lines, money, how)
        if priced.total_cents > MAX_CENTS:
            raise invalid("lines", "the invoice's total is too large")
        tax_vat = priced.vat_in(seller.currency, exchange_rate) if exchange_rate else None
        issued = self._add(
            "invoice",
            customer_id=customer.id,
            priced=priced,
            created_on=created_on,
            pay_before=created_on + timedelta(days=pay_within_days),
            title=title,
            description=description,
            exemption_reason=reason,
            tax_currency=seller.currency.code if foreign else None,
            exchange_rate=exchange_rate,
            tax_currency_vat_cents=tax_vat,
            parties={"seller": seller.party.as_json(), "buyer": buyer.as_json()},
        )
        return self._recorded(EventType.INVOICE_ISSUED, *issued)

    def credit(
        self,
        invoice_id: int,
        *,
        lines: Sequence[LineInput] | None,
        reason: str,
        created_on: date,
    ) -> InvoiceView:
        """Issue a credit note for an invoice: the whole of it when ``lines`` is None,
        else those lines, at the invoice's own VAT rates. What all its credit notes
        credit never exceeds what the invoice charged, rate by rate and in total."""
        invoice = self.repository.locked(invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} does not exist.")
        if invoice.kind != "invoice":
            raise invalid("invoice", f"{invoice.number} is a credit note; credit its invoice")
        reason = reason.strip()
        if len(reason) > MAX_REASON:
            raise invalid("reason", f"must be at most {MAX_REASON} characters")
        if created_on < invoice.created_on:
            raise invalid("date", "a credit note cannot be older than its invoice")
        money = Currency.of(invoice.currency)
        how = Treatment(invoice.treatment)
        invoiced = self.repository.lines(invoice.id)
        if lines is None:
            if invoice.credited_cents:
                raise InvalidState(
                    f"Part of {invoice.number} is credited already: credit the rest line by line."
                )
            given = [_as_input(line) for line in invoiced]
        else:
            if problems := _line_problems(lines):
                raise problems_error(problems)
            given = list(lines)
        priced = price(given, money, how)
        self._check_within(invoice, invoiced, priced)
        tax_vat = (
            priced.vat_in(Currency.of(invoice.tax_currency), Decimal(invoice.exchange_rate))
            if invoice.tax_currency and invoice.exchange_rate
            else None
        )
        note = self._add(
            "credit_note",
            customer_id=invoice.user_id,
            priced=priced,
            created_on=created_on,
            pay_before=created_on,
            title=f"Credit note for invoice {invoice.number}",
            description=reason,
            exemption_reason=invoice.exemption_reason,
            tax_currency=invoice.tax_currency,
            exchange_rate=Decimal(invoice.exchange_rate) if invoice.exchange_rate else None,
            tax_currency_vat_cents=tax_vat,
            parties=invoice.parties,
            corrects=invoice,
        )
        view = self._recorded(EventType.CREDIT_NOTE_ISSUED, *note)
        invoice.credited_cents += priced.total_cents
        self._settle_if_covered(invoice, created_on)
        return view

    def pay(
        self,
        invoice_id: int,
        *,
        amount: Decimal | None,
        paid_on: date,
        method: str = "",
        reference: str = "",
    ) -> InvoiceView:
        """Record a payment (``amount`` None: what is still due). Never more than is
        due; the invoice is paid once payments and credit notes cover it."""
        invoice = self.repository.locked(invoice_id)
        if invoice is None:
            raise NotFound(f"Invoice {invoice_id} does not exist.")
        if invoice.kind != "invoice":
            raise invalid("invoice", f"{invoice.number} is a credit note: nothing to pay")
        money = Currency.of(invoice.currency)
        due = _due(invoice)
        problems: list[ParamError] = []
        cents = due
        if amount is not None:
            try:
                cents = money.cents(amount)
            except ValueError as exc:
                problems.append(ParamError("amount", str(exc)))
            else:
                if cents <= 0:
                    problems.append(ParamError("amount", "must be more than zero"))
                elif cents > due:
                    problems.append(
                        ParamError(
                            "amount",
                            f"is more than the {money.amount(due)} {money.code} still due "
                            f"on {invoice.number}",
                        )
                    )
        if paid_on < invoice.created_on:
            problems.append(
                ParamError("paid_on", "an invoice cannot be paid before it was created")
            )
        method, reference = method.strip(), reference.strip()
        if len(method) > 64:
            problems.append(ParamError("method", "must be at most 64 characters"))
        if len(reference) > 255:
            problems.append(ParamError("reference", "must be at most 255 characters"))
        if problems:
            raise problems_error(problems)
        if cents == 0:
            self._settle_if_covered(invoice, paid_on)
            return InvoiceView.of(invoice)
        payment = self.repository.add_payment(
            Payment(
                invoice_id=invoice.id,
                amount_cents=cents,
                paid_on=paid_on,
                method=method,
                reference=reference,
                recorded_at=self.work.now,
            )
        )
        invoice.paid_cents += cents
        self.work.record(
            EventType.PAYMENT_RECORDED,
            subject_id=invoice.id,
            customer_id=invoice.user_id,
            payload={
                "paymentId": payment.id,
                "invoiceId": invoice.id,
                "number": invoice.number,
                "currency": money.code,
                "amount": str(money.amount(cents)),
                "paidOn": paid_on.isoformat(),
                "method": method,
                "reference": reference,
                "amountDue": str(money.amount(_due(invoice))),
            },
        )
        self._settle_if_covered(invoice, paid_on)
        return InvoiceView.of(invoice)

    def mark_paid(self, invoice_id: int, *, paid_on: date) -> InvoiceView:
        """Pay what is still due; an invoice already paid keeps its date."""
        invoice = self.repository.get(invoice_id)
        if invoice is not None and invoice.paid_on is not None and invoice.kind == "invoice":
            return InvoiceView.of(invoice)
        return self.pay(invoice_id, amount=None, paid_on=paid_on)

    # -- the parts ----------------------------------------------------------------------

    def _add(
        self,
        kind: Kind,
        *,
        customer_id: int,
        priced: Priced,
        created_on: date,
        pay_before: date,
        title: str,
        description: str,
        exemption_reason: str | None,
        tax_currency: str | None,
        exchange_rate: Decimal | None,
        tax_currency_vat_cents: int | None,
        parties: dict[str, dict[str, Any]] | None,
        corrects: Invoice | None = None,
    ) -> tuple[Invoice, list[InvoiceLine]]:
        sequence = self.repository.take_sequence_number(SERIES[kind], created_on.year)
        invoice = Invoice(
            user_id=customer_id,
            number=document_number(kind, created_on.year, sequence),
            kind=kind,
            corrects_id=None if corrects is None else corrects.id,
            title=title,
            description=description,
            created_on=created_on,
            pay_before=pay_before,
            currency=priced.currency.code,
            treatment=priced.treatment.value,
            exemption_reason=exemption_reason,
            amount_excl_vat_cents=priced.net_cents,
            vat_cents=priced.vat_cents,
            vat_perc_hundredths=priced.single_rate,
            tax_currency=tax_currency,
            exchange_rate=None if exchange_rate is None else plain(exchange_rate),
            tax_currency_vat_cents=tax_currency_vat_cents,
            parties=parties,
            # A credit note owes nothing: it is settled the day it is issued.
            paid_on=created_on if kind == "credit_note" else None,
            paid_cents=0,
            credited_cents=0,
        )
        rows = [
            InvoiceLine(
                position=position,
                description=line.description,
                quantity_e4=int(line.quantity * E4),
                unit_price_e4=int(line.unit_price * E4),
                category=line.category.value,
                rate=line.rate,
                net_cents=line.net_cents,
            )
            for position, line in enumerate(priced.lines, start=1)
        ]
        self.repository.add(invoice, rows)
        return invoice, rows

    def _check_within(
        self, invoice: Invoice, invoiced: Sequence[InvoiceLine], priced: Priced
    ) -> None:
        """Refuse a credit note that would credit more than the invoice charged."""
        charged: dict[tuple[str, int], int] = {}
        for line in invoiced:
            key = (line.category, line.rate)
            charged[key] = charged.get(key, 0) + line.net_cents
        credited = self.repository.credited_by_group(invoice.id)
        money = Currency.of(invoice.currency)
        for group in priced.groups:
            key = (group.category.value, group.rate)
            if key not in charged:
                rates = ", ".join(sorted({str(hundredths_to_decimal(rate)) for _, rate in charged}))
                raise invalid(
                    "lines", f"{invoice.number} has no line at that VAT rate (its rates: {rates})"
                )
            left = charged[key] - credited.get(key, 0)
            if group.taxable_cents > left:
                raise invalid(
                    "lines",
                    f"credits {money.amount(group.taxable_cents)} {money.code} at "
                    f"{hundredths_to_decimal(group.rate)}% VAT, but only {money.amount(left)} "
                    f"of {invoice.number} at that rate is left to credit",
                )
        total = invoice.amount_excl_vat_cents + invoice.vat_cents
        if invoice.credited_cents + priced.total_cents > total:
            left = total - invoice.credited_cents
            raise invalid(
                "lines",
                f"credits {money.amount(priced.total_cents)} {money.code}, but only "
                f"{money.amount(left)} of {invoice.number} is left to credit",
            )

    def _settle_if_covered(self, invoice: Invoice, on: date) -> None:
        if invoice.paid_on is None and _due(invoice) == 0:
            invoice.paid_on = on
            self._recorded(EventType.INVOICE_PAID, invoice)

    def _recorded(
        self, kind: EventType, invoice: Invoice, lines: Sequence[InvoiceLine] = ()
    ) -> InvoiceView:
        """The invoice as it now is, its event recorded with the whole of it (with the
        ``lines`` it was just issued with)."""
        view = InvoiceView.of(invoice)
        payload = invoice_layout(view)
        if lines:
            money = Currency.of(invoice.currency)
            payload["lines"] = [line_layout(LineView.of(line, money)) for line in lines]
        self.work.record(kind, subject_id=view.id, customer_id=view.user_id, payload=payload)
        return view


def _due(invoice: Invoice) -> int:
    total = invoice.amount_excl_vat_cents + invoice.vat_cents
    return max(total - invoice.paid_cents - invoice.credited_cents, 0)


def _as_input(line: InvoiceLine) -> LineInput:
    """An invoiced line as a credit note's line (the same category: exempt stays
    exempt; under reverse charge or export, pricing forces the category anyway)."""
    rate = None if line.category == VatCategory.EXEMPT.value else line.rate
    return LineInput(
        line.description, Decimal(line.quantity_e4) / E4, Decimal(line.unit_price_e4) / E4, rate
    )


def _line_problems(lines: Sequence[LineInput]) -> list[ParamError]:
    problems: list[ParamError] = []
    if not 1 <= len(lines) <= MAX_LINES:
        problems.append(ParamError("lines", f"an invoice has 1 to {MAX_LINES} lines"))
    for number, line in enumerate(lines, start=1):
        if not 1 <= len(line.description.strip()) <= MAX_LINE_DESCRIPTION:
            problems.append(
                ParamError(
                    "lines",
                    f"line {number}: the description must be 1 to "
                    f"{MAX_LINE_DESCRIPTION} characters",
                )
            )
        if line.rate is not None and not 0 <= line.rate <= 10_000:
            problems.append(
                ParamError("lines", f"line {number}: the VAT rate must be between 0 and 100")
            )
    return problems


def _title_of(lines: Sequence[LineInput]) -> str:
    """An invoice's title when none is given: its line, or its first and how many more."""
    if not lines:
        return ""
    first = " ".join(lines[0].description.split())
    more = len(lines) - 1
    suffix = f" and {more} more line{'s' if more > 1 else ''}" if more else ""
    if len(first) + len(suffix) > MAX_TITLE:
        first = first[: MAX_TITLE - len(suffix) - 1] + "…"
    return first + suffix


def invoices_of(session: Session, user_id: int | None) -> list[InvoiceView]:
    """Every invoice and credit note (of one customer, or all), oldest first: the admin
    CLI's list."""
    return [InvoiceView.of(invoice) for invoice in InvoiceRepository(session).list(user_id)]


def payments_of(session: Session, invoice_id: int) -> list[PaymentView]:
    """An invoice's payments, oldest first (administration)."""
    repository = InvoiceRepository(session)
    invoice = repository.get(invoice_id)
    if invoice is None:
        raise NotFound(f"Invoice {invoice_id} does not exist.")
    money = Currency.of(invoice.currency)
    return [
        PaymentView(p.id, p.paid_on, money.amount(p.amount_cents), p.method, p.reference)
        for p in repository.payments(invoice_id)
    ]


def details_of(session: Session, invoice_id: int) -> InvoiceDetails:
    """An invoice or credit note with its lines (administration: any customer's)."""
    repository = InvoiceRepository(session)
    invoice = repository.get(invoice_id)
    if invoice is None:
        raise NotFound(f"Invoice {invoice_id} does not exist.")
    money = Currency.of(invoice.currency)
    lines = [LineView.of(line, money) for line in repository.lines(invoice_id)]
    notes = [note.id for note in repository.credit_notes(invoice_id)]
    return InvoiceDetails(InvoiceView.of(invoice), lines, notes)
