"""The invoice actions of the administration category (SPEC 3.1, 3.2), and the
documents of an invoice (getInvoiceDocument, ledgerdesk's own)."""

from __future__ import annotations

from typing import Any

from ledgerdesk.attachments.storage import BlobContent
from ledgerdesk.errors import InvalidState, NotFound
from ledgerdesk.invoices.documents import render
from ledgerdesk.invoices.queries import InvoiceQueries, KindFilter
from ledgerdesk.invoices.schemas import (
    DocumentContent,
    DocumentEnvelope,
    GetInvoiceDetailsParams,
    GetInvoiceDocumentParams,
    GetInvoiceIdsParams,
    InvoiceDetails,
    InvoiceIds,
    InvoiceLine,
    InvoiceList,
)
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.invoices.stored import load_stored
from ledgerdesk.wire.registry import Action, ActionContext, FileDownload

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


def get_invoice_details(context: ActionContext, params: GetInvoiceDetailsParams) -> InvoiceList:
    details = _reader(context).details_with_lines(context.principal.user_id, params.invoiceId)
    view = details.view
    return InvoiceList(
        invoices=[
            InvoiceDetails(
                invoiceId=view.id,
                number=view.number,
                title=view.title,
                description=view.description,
                createdOn=view.created_on,
                payBefore=view.pay_before,
                amountNet=view.amount_net,
                vat=view.vat,
                vatPerc=view.vat_perc,
                status=view.status,
                documentType="creditNote" if view.is_credit_note else "invoice",
                currency=view.currency,
                amountExclVat=view.amount_excl_vat,
                amountPaid=view.amount_paid,
                amountDue=view.amount_due,
                correctsInvoiceId=view.corrects_id,
                lines=[
                    InvoiceLine(
                        description=line.description,
                        quantity=line.quantity,
                        unitPrice=line.unit_price,
                        vatCategory=line.category.value,
                        vatPerc=line.vat_perc,
                        amountExclVat=line.amount_excl_vat,
                    )
                    for line in details.lines
                ],
            )
        ]
    )


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
