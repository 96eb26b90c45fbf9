"""An issued invoice or credit note as one value: everything its documents say, read
from what was stored when it was issued (its parties, lines and totals), nothing from
what has changed since. The same stored invoice gives the same documents, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from ledgerdesk.db.models import Invoice
from ledgerdesk.errors import InvalidState, NotFound
from ledgerdesk.invoices.money import Currency
from ledgerdesk.invoices.parties import Party
from ledgerdesk.invoices.pricing import Line, Treatment, VatCategory, VatGroup, regroup
from ledgerdesk.invoices.repository import InvoiceRepository

E4 = Decimal(10_000)


@dataclass(frozen=True)
class Corrected:
    """The invoice a credit note corrects (EN 16931 BG-3)."""

    number: str
    issued_on: date


@dataclass(frozen=True)
class StoredInvoice:
    id: int
    number: str
    is_credit_note: bool
    issued_on: date
    due_on: date
    title: str
    description: str
    currency: Currency
    treatment: Treatment
    exemption_reason: str | None
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    groups: tuple[VatGroup, ...]
    net_cents: int
    vat_cents: int
    # In another currency than the seller's VAT accounting currency (BT-6, BT-111).
    tax_currency: Currency | None
    exchange_rate: Decimal | None
    tax_currency_vat_cents: int | None
    corrects: Corrected | None

    @property
    def total_cents(self) -> int:
        return self.net_cents + self.vat_cents

    def reason_of(self, group: VatGroup) -> str | None:
        """What the invoice says of a VAT group that charges no VAT (BT-120)."""
        if group.category is VatCategory.EXEMPT:
            return self.exemption_reason
        if group.category in (VatCategory.REVERSE_CHARGE, VatCategory.EXPORT):
            return self.treatment.statement
        return None


def stored_invoice(session: Session, invoice_id: int) -> StoredInvoice:
    """The invoice or credit note ``invoice_id`` (administration: any customer's)."""
    invoice = InvoiceRepository(session).get(invoice_id)
    if invoice is None:
        raise NotFound(f"Invoice {invoice_id} does not exist.")
    return of_invoice(session, invoice)


def of_invoice(session: Session, invoice: Invoice) -> StoredInvoice:
    repository = InvoiceRepository(session)
    parties = invoice.parties
    if not parties or "seller" not in parties or "buyer" not in parties:
        raise InvalidState(
            f"{invoice.number} was issued before invoices named their seller and buyer: "
            "it has no legal document. Credit it and issue it again to have one."
        )
    money = Currency.of(invoice.currency)
    lines = tuple(
        Line(
            description=row.description,
            quantity=Decimal(row.quantity_e4) / E4,
            unit_price=Decimal(row.unit_price_e4) / E4,
            category=VatCategory(row.category),
            rate=row.rate,
            net_cents=row.net_cents,
        )
        for row in repository.lines(invoice.id)
    )
    corrects = None
    if invoice.corrects_id is not None:
        original = repository.get(invoice.corrects_id)
        assert original is not None  # a foreign key
        corrects = Corrected(original.number, original.created_on)
    return StoredInvoice(
        id=invoice.id,
        number=invoice.number,
        is_credit_note=invoice.kind == "credit_note",
        issued_on=invoice.created_on,
        due_on=invoice.pay_before,
        title=invoice.title,
        description=invoice.description,
        currency=money,
        treatment=Treatment(invoice.treatment),
        exemption_reason=invoice.exemption_reason,
        seller=Party.of_json(parties["seller"]),
        buyer=Party.of_json(parties["buyer"]),
        lines=lines,
        groups=regroup(lines, money),
        net_cents=invoice.amount_excl_vat_cents,
        vat_cents=invoice.vat_cents,
        tax_currency=Currency.of(invoice.tax_currency) if invoice.tax_currency else None,
        exchange_rate=Decimal(invoice.exchange_rate) if invoice.exchange_rate else None,
        tax_currency_vat_cents=invoice.tax_currency_vat_cents,
        corrects=corrects,
    )

