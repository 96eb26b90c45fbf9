"""UBL 2.1 ``Invoice`` and ``CreditNote`` documents following EN 16931 (and Peppol BIS
Billing 3.0 when both parties have an electronic address), built with lxml."""

from __future__ import annotations

from typing import Any

from lxml import etree

from ledgerdesk.invoices.documents.common import (
    CODES,
    amount,
    buyer_reference,
    customization_id,
    is_peppol,
    notes,
    percent,
    quantity,
    terms,
)
from ledgerdesk.invoices.money import plain
from ledgerdesk.invoices.parties import Party
from ledgerdesk.invoices.pricing import VatCategory
from ledgerdesk.invoices.stored import StoredInvoice

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOTS = {
    False: "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    True: "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def _cbc(parent: etree._Element, name: str, text: str, /, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", attributes)
    element.text = text
    return element


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def document(invoice: StoredInvoice) -> bytes:
    credit = invoice.is_credit_note
    root_name = "CreditNote" if credit else "Invoice"
    namespace = ROOTS[credit]
    # The document's own namespace is the default one (lxml's stubs know no None key).
    nsmap: Any = {None: namespace, "cac": CAC, "cbc": CBC}
    root = etree.Element(f"{{{namespace}}}{root_name}", nsmap=nsmap)
    money = invoice.currency.code
    _cbc(root, "CustomizationID", customization_id(invoice))
    if is_peppol(invoice):
        _cbc(root, "ProfileID", PEPPOL_PROFILE)
    _cbc(root, "ID", invoice.number)
    _cbc(root, "IssueDate", invoice.issued_on.isoformat())
    if not credit:
        _cbc(root, "DueDate", invoice.due_on.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", CODES[credit])
    for note in notes(invoice):
        _cbc(root, "Note", note)
    _cbc(root, "DocumentCurrencyCode", money)
    if invoice.tax_currency is not None:
        _cbc(root, "TaxCurrencyCode", invoice.tax_currency.code)
    _cbc(root, "BuyerReference", buyer_reference(invoice))
    if invoice.corrects is not None:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", invoice.corrects.number)
        _cbc(reference, "IssueDate", invoice.corrects.issued_on.isoformat())
    _party(_cac(root, "AccountingSupplierParty"), invoice.seller)
    _party(_cac(root, "AccountingCustomerParty"), invoice.buyer)
    seller = invoice.seller
    if seller.iban and not credit:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", "58", name="SEPA credit transfer")
        _cbc(means, "PaymentID", invoice.number)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", seller.iban)
        if seller.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", seller.bic)
    _cbc(_cac(root, "PaymentTerms"), "Note", terms(invoice))
    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", amount(invoice.vat_cents, invoice.currency), currencyID=money)
    for group in invoice.groups:
        subtotal = _cac(tax_total, "TaxSubtotal")
        _cbc(
            subtotal,
            "TaxableAmount",
            amount(group.taxable_cents, invoice.currency),
            currencyID=money,
        )
        _cbc(subtotal, "TaxAmount", amount(group.vat_cents, invoice.currency), currencyID=money)
        _category(subtotal, "TaxCategory", group.category, group.rate, invoice.reason_of(group))
    if invoice.tax_currency is not None and invoice.tax_currency_vat_cents is not None:
        other = _cac(root, "TaxTotal")
        _cbc(
            other,
            "TaxAmount",
            amount(invoice.tax_currency_vat_cents, invoice.tax_currency),
            currencyID=invoice.tax_currency.code,
        )
    totals = _cac(root, "LegalMonetaryTotal")
    for name, cents in (
        ("LineExtensionAmount", invoice.net_cents),
        ("TaxExclusiveAmount", invoice.net_cents),
        ("TaxInclusiveAmount", invoice.total_cents),
        ("PayableAmount", invoice.total_cents),
    ):
        _cbc(totals, name, amount(cents, invoice.currency), currencyID=money)
    for number, line in enumerate(invoice.lines, start=1):
        row = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(row, "ID", str(number))
        _cbc(
            row,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            quantity(line.quantity),
            unitCode="C62",
        )
        _cbc(row, "LineExtensionAmount", amount(line.net_cents, invoice.currency), currencyID=money)
        item = _cac(row, "Item")
        _cbc(item, "Name", line.description)
        _category(item, "ClassifiedTaxCategory", line.category, line.rate, None)
        _cbc(_cac(row, "Price"), "PriceAmount", plain(line.unit_price), currencyID=money)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _party(role: etree._Element, party: Party) -> None:
    element = _cac(role, "Party")
    if party.electronic_address:
        scheme, _, identifier = party.electronic_address.partition(":")
        _cbc(element, "EndpointID", identifier, schemeID=scheme)
    if party.customer_id is not None:
        _cbc(_cac(element, "PartyIdentification"), "ID", str(party.customer_id))
    address = _cac(element, "PostalAddress")
    if party.address_line:
        _cbc(address, "StreetName", party.address_line)
    if party.city:
        _cbc(address, "CityName", party.city)
    if party.postcode:
        _cbc(address, "PostalZone", party.postcode)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)
    if party.vat_id:
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    _cbc(_cac(element, "PartyLegalEntity"), "RegistrationName", party.name)
    if party.email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", party.email)


def _category(
    parent: etree._Element, name: str, category: VatCategory, rate: int, reason: str | None
) -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category.value)
    _cbc(element, "Percent", percent(rate))
    code = {
        VatCategory.REVERSE_CHARGE: "VATEX-EU-AE",
        VatCategory.EXPORT: "VATEX-EU-G",
    }.get(category)
    if code is not None and name == "TaxCategory":
        _cbc(element, "TaxExemptionReasonCode", code)
    if reason:
        _cbc(element, "TaxExemptionReason", reason)
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")
