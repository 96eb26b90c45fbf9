"""UN/CEFACT Cross Industry Invoice (D16B) documents following EN 16931: the XML that
Factur-X and ZUGFeRD embed in their PDFs, built with lxml."""

from __future__ import annotations

from datetime import date

from lxml import etree

from ledgerdesk.invoices.documents.common import (
    CODES,
    amount,
    buyer_reference,
    customization_id,
    notes,
    percent,
    quantity,
    terms,
)
from ledgerdesk.invoices.money import plain
from ledgerdesk.invoices.parties import Party
from ledgerdesk.invoices.pricing import VatCategory
from ledgerdesk.invoices.stored import StoredInvoice

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
EXEMPTION_CODES = {
    VatCategory.REVERSE_CHARGE: "VATEX-EU-AE",
    VatCategory.EXPORT: "VATEX-EU-G",
}


def _ram(
    parent: etree._Element, name: str, text: str | None = None, /, **attributes: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{RAM}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, name: str, day: date, namespace: str = UDT) -> None:
    holder = _ram(parent, name)
    element = etree.SubElement(holder, f"{{{namespace}}}DateTimeString", {"format": "102"})
    element.text = day.strftime("%Y%m%d")


def document(invoice: StoredInvoice) -> bytes:
    money = invoice.currency
    root = etree.Element(
        f"{{{RSM}}}CrossIndustryInvoice",
        nsmap={"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT},
    )
    context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    _ram(
        _ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", customization_id(invoice)
    )
    header = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _ram(header, "ID", invoice.number)
    _ram(header, "TypeCode", CODES[invoice.is_credit_note])
    _date(header, "IssueDateTime", invoice.issued_on)
    for note in notes(invoice):
        _ram(_ram(header, "IncludedNote"), "Content", note)
    transaction = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for number, line in enumerate(invoice.lines, start=1):
        item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
        _ram(_ram(item, "AssociatedDocumentLineDocument"), "LineID", str(number))
        _ram(_ram(item, "SpecifiedTradeProduct"), "Name", line.description)
        agreement = _ram(item, "SpecifiedLineTradeAgreement")
        _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", plain(line.unit_price))
        delivery = _ram(item, "SpecifiedLineTradeDelivery")
        _ram(delivery, "BilledQuantity", quantity(line.quantity), unitCode="C62")
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "TypeCode", "VAT")
        _ram(tax, "CategoryCode", line.category.value)
        _ram(tax, "RateApplicablePercent", percent(line.rate))
        _ram(
            _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"),
            "LineTotalAmount",
            amount(line.net_cents, money),
        )
    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", buyer_reference(invoice))
    _party(agreement, "SellerTradeParty", invoice.seller)
    _party(agreement, "BuyerTradeParty", invoice.buyer)
    delivery = _ram(transaction, "ApplicableHeaderTradeDelivery")
    _date(_ram(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", invoice.issued_on)
    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _ram(settlement, "PaymentReference", invoice.number)
    if invoice.tax_currency is not None:
        _ram(settlement, "TaxCurrencyCode", invoice.tax_currency.code)
    _ram(settlement, "InvoiceCurrencyCode", money.code)
    seller = invoice.seller
    if seller.iban and not invoice.is_credit_note:
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", "58")
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", seller.iban)
        if seller.bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", seller.bic)
    for group in invoice.groups:
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "CalculatedAmount", amount(group.vat_cents, money))
        _ram(tax, "TypeCode", "VAT")
        reason = invoice.reason_of(group)
        if reason:
            _ram(tax, "ExemptionReason", reason)
        _ram(tax, "BasisAmount", amount(group.taxable_cents, money))
        _ram(tax, "CategoryCode", group.category.value)
        code = EXEMPTION_CODES.get(group.category)
        if code:
            _ram(tax, "ExemptionReasonCode", code)
        _ram(tax, "RateApplicablePercent", percent(group.rate))
    payment_terms = _ram(settlement, "SpecifiedTradePaymentTerms")
    _ram(payment_terms, "Description", terms(invoice))
    if not invoice.is_credit_note:
        _date(payment_terms, "DueDateDateTime", invoice.due_on)
    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(totals, "LineTotalAmount", amount(invoice.net_cents, money))
    _ram(totals, "TaxBasisTotalAmount", amount(invoice.net_cents, money))
    _ram(totals, "TaxTotalAmount", amount(invoice.vat_cents, money), currencyID=money.code)
    if invoice.tax_currency is not None and invoice.tax_currency_vat_cents is not None:
        _ram(
            totals,
            "TaxTotalAmount",
            amount(invoice.tax_currency_vat_cents, invoice.tax_currency),
            currencyID=invoice.tax_currency.code,
        )
    _ram(totals, "GrandTotalAmount", amount(invoice.total_cents, money))
    _ram(totals, "DuePayableAmount", amount(invoice.total_cents, money))
    if invoice.corrects is not None:
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", invoice.corrects.number)
        _date(reference, "FormattedIssueDateTime", invoice.corrects.issued_on, QDT)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _party(parent: etree._Element, name: str, party: Party) -> None:
    element = _ram(parent, name)
    if party.customer_id is not None:
        _ram(element, "ID", str(party.customer_id))
    _ram(element, "Name", party.name)
    if party.email:
        contact = _ram(element, "DefinedTradeContact")
        _ram(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    address = _ram(element, "PostalTradeAddress")
    if party.postcode:
        _ram(address, "PostcodeCode", party.postcode)
    if party.address_line:
        _ram(address, "LineOne", party.address_line)
    if party.city:
        _ram(address, "CityName", party.city)
    _ram(address, "CountryID", party.country)
    if party.electronic_address:
        scheme, _, identifier = party.electronic_address.partition(":")
        _ram(_ram(element, "URIUniversalCommunication"), "URIID", identifier, schemeID=scheme)
    if party.vat_id:
        _ram(_ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
