"""Invoice writes and the reads that go with them (administration)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerdesk.db.models import DocumentCounter, Invoice, InvoiceLine, Payment


class InvoiceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, invoice_id: int) -> Invoice | None:
        return self.session.get(Invoice, invoice_id)

    def locked(self, invoice_id: int) -> Invoice | None:
        """The invoice, its row locked until the transaction ends (PostgreSQL; SQLite's
        writers take turns anyway), so that payments and credit notes of one invoice
        are counted one after the other."""
        return self.session.get(Invoice, invoice_id, with_for_update=True, populate_existing=True)

    def list(self, user_id: int | None) -> Sequence[Invoice]:
        query = select(Invoice).order_by(Invoice.created_on, Invoice.id)
        if user_id is not None:
            query = query.where(Invoice.user_id == user_id)
        return self.session.scalars(query).all()

    def lines(self, invoice_id: int) -> Sequence[InvoiceLine]:
        query = (
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
        return self.session.scalars(query).all()

    def payments(self, invoice_id: int) -> Sequence[Payment]:
        query = select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.id)
        return self.session.scalars(query).all()

    def credit_notes(self, invoice_id: int) -> Sequence[Invoice]:
        query = select(Invoice).where(Invoice.corrects_id == invoice_id).order_by(Invoice.id)
        return self.session.scalars(query).all()

    def credited_by_group(self, invoice_id: int) -> dict[tuple[str, int], int]:
        """What the credit notes of an invoice credited so far, by VAT category and rate."""
        query = (
            select(InvoiceLine.category, InvoiceLine.rate, func.sum(InvoiceLine.net_cents))
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(Invoice.corrects_id == invoice_id)
            .group_by(InvoiceLine.category, InvoiceLine.rate)
        )
        return {(c, r): int(total) for c, r, total in self.session.execute(query)}

    def add(self, invoice: Invoice, lines: Sequence[InvoiceLine] = ()) -> Invoice:
        self.session.add(invoice)
        self.session.flush()
        for line in lines:
            line.invoice_id = invoice.id
        self.session.add_all(lines)
        self.session.flush()
        return invoice

    def add_payment(self, payment: Payment) -> Payment:
        self.session.add(payment)
        self.session.flush()
        return payment

    def take_sequence_number(self, series: str, year: int) -> int:
        """The next number of ``series`` in ``year``, reserved until this transaction ends.

        One upsert statement: the counter row is created or incremented under its row
        lock (PostgreSQL) or the database write lock (SQLite), so concurrent creators
        queue up, and a rollback returns the number, keeping the series gapless.
        """
        insert = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        statement = (
            insert(DocumentCounter)
            .values(series=series, year=year, last_seq=1)
            .on_conflict_do_update(
                index_elements=[DocumentCounter.series, DocumentCounter.year],
                set_={"last_seq": DocumentCounter.last_seq + 1},
            )
            .returning(DocumentCounter.last_seq)
        )
        return int(self.session.execute(statement).scalar_one())
