"""The invoice actions of the administration category (SPEC 3.1, 3.2)."""

from __future__ import annotations

from typing import Any

from ledgerdesk.errors import NotFound
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.schemas import (
    GetInvoiceDetailsParams,
    GetInvoiceIdsParams,
    InvoiceDetails,
    InvoiceIds,
    InvoiceList,
)
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.wire.registry import Action, ActionContext


def _reader(context: ActionContext) -> InvoiceReader:
    return InvoiceReader(InvoiceQueries(context.db))


def get_invoice_ids(context: ActionContext, params: GetInvoiceIdsParams) -> InvoiceIds:
    ids = _reader(context).ids_of_customer(
        context.principal.user_id,
        status=params.status,
        date_start=params.dateStart,
        date_end=params.dateEnd,
        today=context.today,
    )
    return InvoiceIds(invoiceIds=ids)


def get_invoice_details(context: ActionContext, params: GetInvoiceDetailsParams) -> InvoiceList:
    view = _reader(context).details_for_customer(context.principal.user_id, params.invoiceId)
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
            )
        ]
    )


ACTIONS: tuple[Action[Any, Any], ...] = (
    Action(
        name="getInvoiceIds",
        summary="Get invoice IDs from selection",
        description="The caller's invoice ids created between dateStart and dateEnd "
        "(both inclusive), oldest first.",
        params=GetInvoiceIdsParams,
        result=InvoiceIds,
        handler=get_invoice_ids,
    ),
    Action(
        name="getInvoiceDetails",
        summary="Get an invoice by its ID",
        params=GetInvoiceDetailsParams,
        result=InvoiceList,
        handler=get_invoice_details,
        errors=(NotFound,),
    ),
)
