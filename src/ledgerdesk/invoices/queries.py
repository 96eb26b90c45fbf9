"""Reads on the request path for invoices, always scoped to the calling customer."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from sqlalchemy import bindparam, select

from ledgerdesk.db.models import Invoice, User
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

# Staff read any customer's invoice.
_ANY = Prepared(
    select(*(getattr(Invoice, field) for field in InvoiceRecord._fields)).where(
        Invoice.id == bindparam("invoice_id")
    )
)

_RECORD_COLUMNS = [getattr(Invoice, field) for field in InvoiceRecord._fields]
_OF_CUSTOMER = Prepared(
    select(*_RECORD_COLUMNS)
    .where(Invoice.user_id == bindparam("user_id"))
    .order_by(Invoice.created_on.desc(), Invoice.id.desc())
    .limit(bindparam("limit"))
)


def _unpaid(*, overdue: bool) -> Prepared:
    query = select(*_RECORD_COLUMNS, User.name).join(User, User.id == Invoice.user_id)
    query = query.where(Invoice.paid_on.is_(None))
    if overdue:
        query = query.where(Invoice.pay_before < bindparam("today"))
    return Prepared(query.order_by(Invoice.pay_before, Invoice.id).limit(bindparam("limit")))


_UNPAID = {overdue: _unpaid(overdue=overdue) for overdue in (True, False)}
_UNPAID_AMOUNTS = Prepared(
    select(Invoice.amount_excl_vat_cents, Invoice.vat_perc_hundredths, Invoice.pay_before).where(
        Invoice.paid_on.is_(None)
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

    def details(self, invoice_id: int) -> InvoiceRecord | None:
        """Any customer's invoice (for staff)."""
        row = self.db.first(_ANY, invoice_id=invoice_id)
        return None if row is None else InvoiceRecord(*row)

    def of_customer(self, user_id: int, *, limit: int) -> list[InvoiceRecord]:
        """A customer's latest invoices, newest first."""
        return [
            InvoiceRecord(*row) for row in self.db.rows(_OF_CUSTOMER, user_id=user_id, limit=limit)
        ]

    def unpaid(self, *, overdue_on: date | None, limit: int) -> list[tuple[InvoiceRecord, str]]:
        """Unpaid invoices of every customer (only those due before ``overdue_on`` when
        given), soonest due first, each with its customer's name."""
        params: dict[str, object] = {"limit": limit}
        if overdue_on is not None:
            params["today"] = overdue_on
        rows = self.db.rows(_UNPAID[overdue_on is not None], **params)
        return [(InvoiceRecord(*row[:-1]), row[-1]) for row in rows]

    def unpaid_amounts(self) -> list[tuple[int, int, date]]:
        """Amount excluding VAT, VAT rate and due date of every unpaid invoice."""
        return [(a, v, d) for a, v, d in self.db.rows(_UNPAID_AMOUNTS)]
