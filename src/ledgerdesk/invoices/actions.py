"""The invoice actions of the administration category (SPEC 3.1, 3.2), and the
documents of an invoice (getInvoiceDocument, ledgerdesk's own)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledgerdesk.attachments.storage import BlobContent
from ledgerdesk.errors import InvalidState, NotFound
from ledgerdesk.invoices.documents import render
from ledgerdesk.invoices.money import Currency
from ledgerdesk.invoices.queries import InvoiceQueries, InvoiceRecord, KindFilter, LineRecord
from ledgerdesk.invoices.schemas import (
    DocumentContent,
    DocumentEnvelope,
    GetInvoiceDetailsParams,
    GetInvoiceDocumentParams,
    GetInvoiceIdsParams,
    InvoiceIds,
    InvoiceList,
)
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.invoices.stored import load_stored
from ledgerdesk.wire.registry import Action, ActionContext, FileDownload
from ledgerdesk.wire.types import Shaped

# The protocol's document types, as the invoices table names its kinds.
KINDS: dict[str, KindFilter] = {"invoice": "invoice", "creditNote": "credit_note", "all": None}


def _reader(context: ActionContext) -> InvoiceReader:
    return InvoiceReader(InvoiceQueries(context.db))


def get_invoice_ids(context: ActionContext, params: GetInvoiceIdsParams) -> InvoiceIds:
    ids = _reader(context).ids_of_customer(
        context.principal.user_id,
        status=params.status,
        date_start=params.dateStart,
        date_end=params.dateEnd,
        today=context.today,
        kind=KINDS[params.documentType],
    )
    return InvoiceIds(invoiceIds=ids)


def get_invoice_details(
    context: ActionContext, params: GetInvoiceDetailsParams
) -> Shaped[InvoiceList]:
    found = _reader(context).records_with_lines(context.principal.user_id, params.invoiceId)
    return Shaped(InvoiceList, {"invoices": [details_out(*found)]})


def details_out(invoice: InvoiceRecord, lines: list[LineRecord]) -> dict[str, Any]:
    """An invoice as ``InvoiceDetails`` lays it out: i3D.net's fields first, in their
    order, then ledgerdesk's. Plain data straight from the rows (building views and
    models costs more than the read); the envelope writes the Decimals as ``Number``
    does, and the test suite checks every answer against the model."""
    money = Currency.of(invoice.currency)
    amount = money.amount
    total = invoice.amount_excl_vat_cents + invoice.vat_cents
    due = max(total - invoice.paid_cents - invoice.credited_cents, 0)
    return {
        "invoiceId": invoice.id,
        "number": invoice.number,
        "title": invoice.title,
        "description": invoice.description,
        "createdOn": invoice.created_on,
        "payBefore": invoice.pay_before,
        "amountNet": amount(total),
        "vat": amount(invoice.vat_cents),
        "vatPerc": Decimal(invoice.vat_perc_hundredths).scaleb(-2),
        "status": "unpaid" if invoice.paid_on is None else "paid",
        "documentType": "creditNote" if invoice.kind == "credit_note" else "invoice",
        "currency": invoice.currency,
        "amountExclVat": amount(invoice.amount_excl_vat_cents),
        "amountPaid": amount(invoice.paid_cents),
        "amountDue": amount(due),
        "correctsInvoiceId": invoice.corrects_id,
        "lines": [
            {
                "description": line.description,
                "quantity": Decimal(line.quantity_e4).scaleb(-4),
                "unitPrice": Decimal(line.unit_price_e4).scaleb(-4),
                "vatCategory": line.category,
                "vatPerc": Decimal(line.rate).scaleb(-2),
                "amountExclVat": amount(line.net_cents),
            }
            for line in lines
        ],
    }


def get_invoice_document(context: ActionContext, params: GetInvoiceDocumentParams) -> FileDownload:
    stored = load_stored(context.db, params.invoiceId, user_id=context.principal.user_id)
    document = render(stored, params.format)
    content = BlobContent(size=len(document.content), data=document.content)
    if params.encoding != "base64":
        return FileDownload(document.file_name, document.media_type, content)
    envelope = DocumentEnvelope(
        invoices=DocumentContent(
            invoiceId=stored.id,
            number=stored.number,
            format=params.format,
            name=document.file_name,
            contentType=document.media_type,
            size=len(document.content),
            content="",
        )
    )
    return FileDownload(document.file_name, document.media_type, content, envelope)


ACTIONS: tuple[Action[Any, Any], ...] = (
    Action(
        name="getInvoiceIds",
        summary="Get invoice IDs from selection",
        description="The caller's invoice ids created between dateStart and dateEnd "
        "(both inclusive), oldest first; with documentType, credit notes too.",
        params=GetInvoiceIdsParams,
        result=InvoiceIds,
        handler=get_invoice_ids,
    ),
    Action(
        name="getInvoiceDetails",
        summary="Get an invoice by its ID",
        description="An invoice or a credit note, with its lines and currency.",
        params=GetInvoiceDetailsParams,
        result=InvoiceList,
        handler=get_invoice_details,
        errors=(NotFound,),
    ),
    Action(
        name="getInvoiceDocument",
        summary="Download an invoice or a credit note as a PDF, UBL or CII document",
        description="The document itself (Content-Disposition: attachment), or with "
        '"encoding": "base64" the JSON envelope below. The same invoice gives the same '
        "bytes every time. Invoices issued before ledgerdesk kept their seller and buyer "
        "have none (3002).",
        params=GetInvoiceDocumentParams,
        result=DocumentEnvelope,
        handler=get_invoice_document,
        errors=(NotFound, InvalidState),
        returns_file=True,
        offload=True,
    ),
)
