"""The documents of invoices and credit notes: UBL 2.1, CII, and the Factur-X PDF/A-3,
made from the stored invoice alone (the same bytes every time).

CI also checks every document of the sample set against the official EN 16931 rules
(``.ci/run``); these tests hold the documents to what each kind of invoice must say.
"""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from typing import cast

import facturx.facturx
import pypdfium2
import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import update

from ledgerdesk.db.models import Invoice
from ledgerdesk.errors import InvalidState
from ledgerdesk.invoices.documents import render
from ledgerdesk.invoices.stored import StoredInvoice, stored_invoice
from ledgerdesk.runtime import Runtime
from tests.factories import make_invoice, make_user
from tests.invoices.samples import Sample, build

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
}


@pytest.fixture
def samples(runtime: Runtime) -> dict[str, StoredInvoice]:
    built: list[Sample] = build(runtime)
    with runtime.transaction(write=False) as (session, _):
        return {s.name: stored_invoice(session, s.invoice_id) for s in built}


def ubl(stored: StoredInvoice) -> etree._Element:
    return etree.fromstring(render(stored, "ubl").content)


def cii(stored: StoredInvoice) -> etree._Element:
    return etree.fromstring(render(stored, "cii").content)


def texts(root: etree._Element, path: str) -> list[str]:
    return [str(e.text) for e in root.xpath(path, namespaces=NS)]


def test_every_document_is_the_same_bytes_every_time(samples: dict[str, StoredInvoice]) -> None:
    for stored in samples.values():
        for kind in ("ubl", "cii", "pdf"):
            assert render(stored, kind).content == render(stored, kind).content, (
                stored.number,
                kind,
            )


def test_a_pdf_made_hours_later_is_the_same(
    samples: dict[str, StoredInvoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    """factur-x stamps the time of day into the PDF; none of it may be left there."""
    stored = samples["one-line"]
    first = render(stored, "pdf").content
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=3, seconds=7)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Later:  # type: ignore[override]
            return cast(Later, later if tz else later.replace(tzinfo=None))

    monkeypatch.setattr(facturx.facturx, "datetime", Later)
    assert render(stored, "pdf").content == first


def test_ubl_totals_and_breakdown_of_three_rates(samples: dict[str, StoredInvoice]) -> None:
    root = ubl(samples["three-rates"])
    assert etree.QName(root).localname == "Invoice"
    assert texts(root, "cbc:InvoiceTypeCode") == ["380"]
    assert texts(root, "cbc:DocumentCurrencyCode") == ["EUR"]
    assert len(root.xpath("cac:InvoiceLine", namespaces=NS)) == 22
    breakdown = [
        (
            texts(sub, "cac:TaxCategory/cbc:ID")[0],
            texts(sub, "cac:TaxCategory/cbc:Percent")[0],
            texts(sub, "cbc:TaxableAmount")[0],
            texts(sub, "cbc:TaxAmount")[0],
        )
        for sub in root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=NS)
    ]
    assert breakdown == [
        ("S", "21", "346.80", "72.83"),
        ("S", "9", "8.00", "0.72"),
        ("Z", "0", "12.00", "0.00"),
    ]
    totals = "cac:LegalMonetaryTotal/cbc:"
    assert texts(root, totals + "TaxExclusiveAmount") == ["366.80"]
    assert texts(root, totals + "PayableAmount") == ["440.35"]
    assert texts(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == [
        "NL91ABNA0417164300"
    ]


def test_reverse_charge_export_and_exempt_say_why(samples: dict[str, StoredInvoice]) -> None:
    reverse = ubl(samples["reverse-charge"])
    assert texts(reverse, "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID") == [
        "AE",
        "AE",
    ]
    assert texts(
        reverse, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReasonCode"
    ) == ["VATEX-EU-AE"]
    assert texts(
        reverse, "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
    ) == ["DE136695976"]
    assert any("Reverse charge" in note for note in texts(reverse, "cbc:Note"))
    export = cii(samples["export-usd"])
    assert texts(
        export, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode"
    ) == ["G"]
    exempt = cii(samples["exempt"])
    assert texts(
        exempt, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason"
    ) == ["Education, Article 132(1)(i) Directive 2006/112/EC"]


def test_another_currency_states_its_vat_in_the_sellers_too(
    samples: dict[str, StoredInvoice],
) -> None:
    root = ubl(samples["export-usd"])
    assert texts(root, "cbc:DocumentCurrencyCode") == ["USD"]
    assert texts(root, "cbc:TaxCurrencyCode") == ["EUR"]
    amounts = [
        (e.get("currencyID"), e.text)
        for e in root.xpath("cac:TaxTotal/cbc:TaxAmount", namespaces=NS)
    ]
    assert amounts == [("USD", "0.00"), ("EUR", "0.00")]
    jpy = ubl(samples["jpy"])
    assert texts(jpy, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["18000"]  # whole yen


def test_credit_notes_name_the_invoice_they_correct(samples: dict[str, StoredInvoice]) -> None:
    partial, full = samples["credit-partial"], samples["credit-full"]
    root = ubl(partial)
    assert etree.QName(root).localname == "CreditNote"
    assert texts(root, "cbc:CreditNoteTypeCode") == ["381"]
    assert texts(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        samples["three-rates"].number
    ]
    assert texts(root, "cac:CreditNoteLine/cbc:CreditedQuantity") == ["3"]
    assert partial.number.startswith("C26-")
    invoice = cii(full)
    assert texts(invoice, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert texts(invoice, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        samples["reverse-charge"].number
    ]
    assert full.total_cents == samples["reverse-charge"].total_cents


def test_a_peppol_invoice_carries_the_parties_addresses(
    samples: dict[str, StoredInvoice],
) -> None:
    root = ubl(samples["peppol"])
    assert texts(root, "cbc:CustomizationID") == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    ]
    assert texts(root, "cbc:ProfileID") == ["urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"]
    endpoints = [(e.get("schemeID"), e.text) for e in root.xpath("//cbc:EndpointID", namespaces=NS)]
    assert endpoints == [("0106", "12345678"), ("0208", "0403170701")]
    plain = ubl(samples["one-line"])
    assert texts(plain, "cbc:CustomizationID") == ["urn:cen.eu:en16931:2017"]


def test_the_pdf_is_factur_x_with_the_cii_inside(samples: dict[str, StoredInvoice]) -> None:
    stored = samples["three-rates"]
    pdf = render(stored, "pdf").content
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments["factur-x.xml"] == [render(stored, "cii").content]
    root = reader.trailer["/Root"]
    assert "/OutputIntents" in root
    xmp = root["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert b"EN 16931" in xmp
    assert b"2026-11-30T00:00:00+00:00" in xmp  # the invoice's date, not the time it was made
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20261130000000+00'00'"
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 2  # 22 lines: the totals go to a second page, together
    first = document[0].get_textpage().get_text_range()
    last = document[len(document) - 1].get_textpage().get_text_range()
    assert stored.number in first
    assert "Jansen Webdesign" in first
    assert "440.35" in last


def test_an_invoice_from_before_parties_were_kept_has_no_document(runtime: Runtime) -> None:
    invoice = make_invoice(runtime, make_user(runtime), created_on=runtime.day_of(0))
    with runtime.transaction(write=True) as (session, _):
        session.execute(update(Invoice).where(Invoice.id == invoice.id).values(parties=None))
    with (
        runtime.transaction(write=False) as (session, _),
        pytest.raises(InvalidState, match="no legal document"),
    ):
        stored_invoice(session, invoice.id)


def test_amounts_are_written_as_the_currency_has_them(samples: dict[str, StoredInvoice]) -> None:
    one_line = samples["one-line"]
    assert one_line.lines[0].unit_price == Decimal("89")
    root = cii(one_line)
    assert texts(root, "//ram:NetPriceProductTradePrice/ram:ChargeAmount") == ["89"]
    assert texts(root, "//ram:GrandTotalAmount") == ["107.69"]
