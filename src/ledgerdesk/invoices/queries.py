"""Reads on the request path for invoices, always scoped to the calling customer."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, NamedTuple

from sqlalchemy import bindparam, select

from ledgerdesk.db.models import Invoice, InvoiceLine, User
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
    vat_cents: int
    vat_perc_hundredths: int
    paid_on: date | None
    kind: str
    currency: str
    paid_cents: int
    credited_cents: int
    corrects_id: int | None


class LineRecord(NamedTuple):
    description: str
    quantity_e4: int
    unit_price_e4: int
    category: str
    rate: int
    net_cents: int


class StoredRecord(NamedTuple):
    """All an invoice's documents say (see invoices.stored)."""

    id: int
    user_id: int
    number: str
    kind: str
    created_on: date
    pay_before: date
    title: str
    description: str
    currency: str
    treatment: str
    exemption_reason: str | None
    parties: Any
    amount_excl_vat_cents: int
    vat_cents: int
    tax_currency: str | None
    exchange_rate: str | None
    tax_currency_vat_cents: int | None
    corrects_id: int | None


KindFilter = Literal["invoice", "credit_note"] | None


def _ids(paid: bool | None, kind: KindFilter) -> Prepared:
    query = select(Invoice.id).where(
        Invoice.user_id == bindparam("user_id"),
        Invoice.created_on >= bindparam("first"),
        Invoice.created_on <= bindparam("last"),
    )
    if paid is True:
        query = query.where(Invoice.paid_on.is_not(None))
    elif paid is False:
        query = query.where(Invoice.paid_on.is_(None))
    if kind is not None:
        query = query.where(Invoice.kind == kind)
    return Prepared(query.order_by(Invoice.created_on, Invoice.id))


# One prepared statement per filter: prepared SQL has no optional clauses.
_IDS = {
    (paid, kind): _ids(paid, kind)
    for paid in (None, True, False)
    for kind in ("invoice", "credit_note", None)
}

_RECORD_COLUMNS = [getattr(Invoice, field) for field in InvoiceRecord._fields]

_DETAILS = Prepared(
    select(*_RECORD_COLUMNS).where(
        # Scoped in the query: another customer's invoice is simply not found.
        Invoice.id == bindparam("invoice_id"),
        Invoice.user_id == bindparam("user_id"),
    )
)

# Staff read any customer's invoice.
_ANY = Prepared(select(*_RECORD_COLUMNS).where(Invoice.id == bindparam("invoice_id")))

_OF_CUSTOMER = Prepared(
    select(*_RECORD_COLUMNS)
    .where(Invoice.user_id == bindparam("user_id"))
    .order_by(Invoice.created_on.desc(), Invoice.id.desc())
    .limit(bindparam("limit"))
)

# Lines of an invoice whose owner was checked by the read that found it.
_LINES = Prepared(
    select(*(getattr(InvoiceLine, field) for field in LineRecord._fields))
    .where(InvoiceLine.invoice_id == bindparam("invoice_id"))
    .order_by(InvoiceLine.position)
)
# An invoice with its lines in one statement (the protocol's details): a row per line.
_DETAILS_WITH_LINES = Prepared(
    select(*_RECORD_COLUMNS, *(getattr(InvoiceLine, field) for field in LineRecord._fields))
    .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
    .where(Invoice.id == bindparam("invoice_id"), Invoice.user_id == bindparam("user_id"))
    .order_by(InvoiceLine.position)
)
_CREDIT_NOTES = Prepared(
    select(Invoice.id).where(Invoice.corrects_id == bindparam("invoice_id")).order_by(Invoice.id)
)


_STORED_COLUMNS = [getattr(Invoice, field) for field in StoredRecord._fields]
_STORED = {
    False: Prepared(select(*_STORED_COLUMNS).where(Invoice.id == bindparam("invoice_id"))),
    True: Prepared(
        select(*_STORED_COLUMNS).where(
            Invoice.id == bindparam("invoice_id"), Invoice.user_id == bindparam("user_id")
        )
    ),
}
_NUMBER_AND_DATE = Prepared(
    select(Invoice.number, Invoice.created_on).where(Invoice.id == bindparam("invoice_id"))
)


def _unpaid(*, overdue: bool) -> Prepared:
    query = select(*_RECORD_COLUMNS, User.name).join(User, User.id == Invoice.user_id)
    query = query.where(Invoice.paid_on.is_(None))
    if overdue:
        query = query.where(Invoice.pay_before < bindparam("today"))
    return Prepared(query.order_by(Invoice.pay_before, Invoice.id).limit(bindparam("limit")))


_UNPAID = {overdue: _unpaid(overdue=overdue) for overdue in (True, False)}
_UNPAID_AMOUNTS = Prepared(
    select(
        Invoice.currency,
        Invoice.amount_excl_vat_cents
        + Invoice.vat_cents
        - Invoice.paid_cents
        - Invoice.credited_cents,
        Invoice.pay_before,
    ).where(Invoice.paid_on.is_(None))
)


class InvoiceQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    def ids_of_customer(
        self,
        user_id: int,
        *,
        paid: bool | None,
        first: date,
        last: date,
        kind: KindFilter = "invoice",
    ) -> list[int]:
        return self.db.column(_IDS[paid, kind], user_id=user_id, first=first, last=last)

    def details_of_customer(self, user_id: int, invoice_id: int) -> InvoiceRecord | None:
        row = self.db.first(_DETAILS, user_id=user_id, invoice_id=invoice_id)
        return None if row is None else InvoiceRecord(*row)

    def details_with_lines(
        self, user_id: int, invoice_id: int
    ) -> tuple[InvoiceRecord, list[LineRecord]] | None:
        """A customer's invoice and its lines, in one statement."""
        rows = self.db.rows(_DETAILS_WITH_LINES, user_id=user_id, invoice_id=invoice_id)
        if not rows:
            return None
        width = len(InvoiceRecord._fields)
        return InvoiceRecord(*rows[0][:width]), [LineRecord(*row[width:]) for row in rows]

    def details(self, invoice_id: int) -> InvoiceRecord | None:
        """Any customer's invoice (for staff)."""
        row = self.db.first(_ANY, invoice_id=invoice_id)
        return None if row is None else InvoiceRecord(*row)

    def lines_of(self, invoice_id: int) -> list[LineRecord]:
        """The lines of an invoice already read through a scoped query."""
        return [LineRecord(*row) for row in self.db.rows(_LINES, invoice_id=invoice_id)]

    def stored(self, invoice_id: int, *, user_id: int | None) -> StoredRecord | None:
        """An invoice as its documents need it: the customer's own (``user_id``), or
        any (None: staff)."""
        params: dict[str, object] = {"invoice_id": invoice_id}
        if user_id is not None:
            params["user_id"] = user_id
        row = self.db.first(_STORED[user_id is not None], **params)
        return None if row is None else StoredRecord(*row)

    def number_and_date(self, invoice_id: int) -> tuple[str, date] | None:
        row = self.db.first(_NUMBER_AND_DATE, invoice_id=invoice_id)
        return None if row is None else (row[0], row[1])

    def credit_note_ids(self, invoice_id: int) -> list[int]:
        return self.db.column(_CREDIT_NOTES, invoice_id=invoice_id)

    def of_customer(self, user_id: int, *, limit: int) -> list[InvoiceRecord]:
        """A customer's latest invoices and credit notes, newest first."""
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

    def unpaid_amounts(self) -> list[tuple[str, int, date]]:
        """Currency, amount still due and due date of every unpaid invoice."""
        return [(c, int(d), p) for c, d, p in self.db.rows(_UNPAID_AMOUNTS)]
