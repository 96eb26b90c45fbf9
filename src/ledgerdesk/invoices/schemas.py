"""Wire parameters and results of the invoice actions (SPEC 3.1, 3.2)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from ledgerdesk.wire.types import DmyDate, Id, Number, Params, Result, WireInt


class GetInvoiceIdsParams(Params):
    status: Annotated[WireInt, Field(ge=-1, le=1, description="0 unpaid, 1 paid, -1 all")] = -1
    dateStart: DmyDate | None = Field(
        default=None, description="First creation date, inclusive (default: 30 days ago)"
    )
    dateEnd: DmyDate | None = Field(
        default=None, description="Last creation date, inclusive (default: today)"
    )


class InvoiceIds(Result):
    invoiceIds: list[int]


class GetInvoiceDetailsParams(Params):
    invoiceId: Id


class InvoiceDetails(Result):
    invoiceId: int
    number: str
    title: str
    description: str
    createdOn: date
    payBefore: date
    amountNet: Number = Field(description="Amount including VAT")
    vat: Number
    vatPerc: Number
    status: Literal["paid", "unpaid"]


class InvoiceList(Result):
    invoices: list[InvoiceDetails]
