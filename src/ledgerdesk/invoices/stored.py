"""An issued invoice or credit note as one value: everything its documents say, read
from what was stored when it was issued (its parties, lines and totals), nothing from
what has changed since. The same stored invoice gives the same documents, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from ledgerdesk.db.prepared import Db, session_db
from ledgerdesk.errors import InvalidState, NotFound
from ledgerdesk.invoices.money import Currency
from ledgerdesk.invoices.parties import Party
from ledgerdesk.invoices.pricing import Line, Treatment, VatCategory, VatGroup, regroup
from ledgerdesk.invoices.queries import InvoiceQueries

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
    """Any customer's invoice or credit note (administration)."""
    return load_stored(session_db(session), invoice_id, user_id=None)


def load_stored(db: Db, invoice_id: int, *, user_id: int | None) -> StoredInvoice:
    """The invoice or credit note ``invoice_id``: of the customer ``user_id`` only (a
    404 for anyone else's), or any (None)."""
    queries = InvoiceQueries(db)
    record = queries.stored(invoice_id, user_id=user_id)
    if record is None:
        raise NotFound(f"Invoice {invoice_id} not found.")
    # A JSON column: decoded by the driver, or (a raw connection) as text.
    parties = json.loads(record.parties) if isinstance(record.parties, str) else record.parties
    if not parties or "seller" not in parties or "buyer" not in parties:
        raise InvalidState(
            f"{record.number} was issued before invoices named their seller and buyer: "
            "it has no legal document. Credit it and issue it again to have one."
        )
    money = Currency.of(record.currency)
    lines = tuple(
        Line(
            description=row.description,
            quantity=Decimal(row.quantity_e4) / E4,
            unit_price=Decimal(row.unit_price_e4) / E4,
            category=VatCategory(row.category),
            rate=row.rate,
            net_cents=row.net_cents,
        )
        for row in queries.lines_of(record.id)
    )
    corrects = None
    if record.corrects_id is not None:
        found = queries.number_and_date(record.corrects_id)
        assert found is not None  # a foreign key
        corrects = Corrected(*found)
    return StoredInvoice(
        id=record.id,
        number=record.number,
        is_credit_note=record.kind == "credit_note",
        issued_on=record.created_on,
        due_on=record.pay_before,
        title=record.title,
        description=record.description,
        currency=money,
        treatment=Treatment(record.treatment),
        exemption_reason=record.exemption_reason,
        seller=Party.of_json(parties["seller"]),
        buyer=Party.of_json(parties["buyer"]),
        lines=lines,
        groups=regroup(lines, money),
        net_cents=record.amount_excl_vat_cents,
        vat_cents=record.vat_cents,
        tax_currency=Currency.of(record.tax_currency) if record.tax_currency else None,
        exchange_rate=Decimal(record.exchange_rate) if record.exchange_rate else None,
        tax_currency_vat_cents=record.tax_currency_vat_cents,
        corrects=corrects,
    )
