"""What the documents of an invoice write alike: numbers as EN 16931 wants them, the
notes, the payment terms, and whether it goes out as a Peppol BIS invoice."""

from __future__ import annotations

from decimal import Decimal

from ledgerdesk.invoices.money import Currency, hundredths_to_decimal, plain
from ledgerdesk.invoices.stored import StoredInvoice

EN16931 = "urn:cen.eu:en16931:2017"
PEPPOL_BIS = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
# UNTDID 1001: a commercial invoice, a credit note.
CODES = {False: "380", True: "381"}


def amount(cents: int, currency: Currency) -> str:
    return str(currency.amount(cents))


def quantity(value: Decimal) -> str:
    return plain(value)


def percent(rate: int) -> str:
    return plain(hundredths_to_decimal(rate))


def is_peppol(invoice: StoredInvoice) -> bool:
    """Both parties can be reached on the Peppol network: the invoice says it follows
    Peppol BIS Billing 3.0 (which is EN 16931 with a few more rules)."""
    return bool(invoice.seller.electronic_address and invoice.buyer.electronic_address)


def customization_id(invoice: StoredInvoice) -> str:
    return PEPPOL_BIS if is_peppol(invoice) else EN16931


def buyer_reference(invoice: StoredInvoice) -> str:
    """BT-10: the customer's number at the seller (Peppol needs one)."""
    return f"Customer {invoice.buyer.customer_id}" if invoice.buyer.customer_id else "-"


def notes(invoice: StoredInvoice) -> list[str]:
    """The invoice's notes (BG-1): its title and description, what its VAT treatment
    must say, and the exchange rate of its VAT in the seller's currency."""
    found = [invoice.title]
    if invoice.description.strip():
        found.append(invoice.description.strip())
    if invoice.treatment.statement:
        found.append(invoice.treatment.statement)
    note = rate_note(invoice)
    if note:
        found.append(note)
    return found


def rate_note(invoice: StoredInvoice) -> str | None:
    if invoice.exchange_rate is None or invoice.tax_currency is None:
        return None
    return (
        f"Exchange rate: 1 {invoice.currency.code} = {plain(invoice.exchange_rate)} "
        f"{invoice.tax_currency.code} on {invoice.issued_on.isoformat()}."
    )


def terms(invoice: StoredInvoice) -> str:
    """The payment terms (BT-20)."""
    if invoice.corrects is not None:
        return f"Credited against invoice {invoice.corrects.number}."
    pay_to = f" to {invoice.seller.iban}" if invoice.seller.iban else ""
    return f"Payable by {invoice.due_on.isoformat()}{pay_to}, quoting {invoice.number}."
