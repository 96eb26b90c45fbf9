"""Reads on the request path for invoices, always scoped to the calling customer."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from sqlalchemy import bindparam, select

from ledgerdesk.db.models import Invoice
from ledgerdesk.db.prepared import Db, Prepared


class InvoiceRecord(NamedTuple):
    id: int
    user_id: int
    number: str
    title: str
    description: str
    created_on: date
    pay_before: date
    amount_excl_vat_cents: int
    vat_perc_hundredths: int
    paid_on: date | None


def _ids(paid: bool | None) -> Prepared:
    query = select(Invoice.id).where(
        Invoice.user_id == bindparam("user_id"),
        Invoice.created_on >= bindparam("first"),
        Invoice.created_on <= bindparam("last"),
    )
    if paid is True:
        query = query.where(Invoice.paid_on.is_not(None))
    elif paid is False:
        query = query.where(Invoice.paid_on.is_(None))
    return Prepared(query.order_by(Invoice.created_on, Invoice.id))


# One prepared statement per status filter: prepared SQL has no optional clauses.
_IDS = {paid: _ids(paid) for paid in (None, True, False)}

_DETAILS = Prepared(
    select(*(getattr(Invoice, field) for field in InvoiceRecord._fields)).where(
        # Scoped in the query: another customer's invoice is simply not found.
        Invoice.id == bindparam("invoice_id"),
        Invoice.user_id == bindparam("user_id"),
    )
)


class InvoiceQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    def ids_of_customer(
        self, user_id: int, *, paid: bool | None, first: date, last: date
    ) -> list[int]:
        return self.db.column(_IDS[paid], user_id=user_id, first=first, last=last)

    def details_of_customer(self, user_id: int, invoice_id: int) -> InvoiceRecord | None:
        row = self.db.first(_DETAILS, user_id=user_id, invoice_id=invoice_id)
        return None if row is None else InvoiceRecord(*row)
