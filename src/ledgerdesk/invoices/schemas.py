"""Wire parameters and results of the invoice actions (SPEC 3.1, 3.2, and the
documents ledgerdesk adds)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from ledgerdesk.wire.types import DmyDate, Id, Number, Params, Result, WireInt

DocumentType = Literal["invoice", "creditNote"]


class GetInvoiceIdsParams(Params):
    status: Annotated[WireInt, Field(ge=-1, le=1, description="0 unpaid, 1 paid, -1 all")] = -1
    dateStart: DmyDate | None = Field(
        default=None, description="First creation date, inclusive (default: 30 days ago)"
    )
    dateEnd: DmyDate | None = Field(
        default=None, description="Last creation date, inclusive (default: today)"
    )
    documentType: Literal["invoice", "creditNote", "all"] = Field(
        default="invoice",
        description='"invoice" (the default: what clients of i3D.net\'s API expect), '
        '"creditNote", or "all". A credit note is always "paid" (it owes nothing).',
    )


class InvoiceIds(Result):
    invoiceIds: list[int]


class GetInvoiceDetailsParams(Params):
    invoiceId: Id


class InvoiceLine(Result):
    description: str
    quantity: Number
    unitPrice: Number = Field(description="Excluding VAT")
    vatCategory: Literal["S", "Z", "E", "AE", "G"] = Field(
        description="UNCL 5305: S standard, Z zero rated, E exempt, AE reverse charge, "
        "G export outside the EU"
    )
    vatPerc: Number
    amountExclVat: Number


class InvoiceDetails(Result):
    invoiceId: int
    number: str
    title: str
    description: str
    createdOn: date
    payBefore: date
    amountNet: Number = Field(description="Amount including VAT")
    vat: Number
    vatPerc: Number = Field(
        description="The VAT rate; for an invoice with several rates, its total VAT as a "
        "percentage of its total excluding VAT (the lines carry each rate)"
    )
    status: Literal["paid", "unpaid"]
    # ledgerdesk's additions: after i3D.net's fields, so their clients read them as before.
    documentType: DocumentType
    currency: str = Field(description="ISO 4217")
    amountExclVat: Number
    amountPaid: Number
    amountDue: Number
    correctsInvoiceId: int | None = Field(
        description="A credit note: the invoice it corrects; null for an invoice"
    )
    lines: list[InvoiceLine]


class InvoiceList(Result):
    invoices: list[InvoiceDetails]


class GetInvoiceDocumentParams(Params):
    invoiceId: Id = Field(description="An invoice's or a credit note's id")
    format: Literal["pdf", "ubl", "cii"] = Field(
        description="pdf: a PDF/A-3 with the CII embedded (Factur-X); ubl: UBL 2.1; cii: "
        "UN/CEFACT CII. The XML documents follow EN 16931."
    )
    encoding: Literal["base64", "raw"] | None = Field(
        default=None,
        description='"base64" for the JSON envelope, "raw" (the default) for the file itself',
    )


class DocumentContent(Result):
    invoiceId: int
    number: str
    format: Literal["pdf", "ubl", "cii"]
    name: str
    contentType: str
    size: int
    content: str = Field(description="The document, base64")


class DocumentEnvelope(Result):
    invoices: DocumentContent
