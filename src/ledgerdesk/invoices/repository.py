"""Every invoice query. Customer reads start from the owner's id, in the query itself."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerdesk.db.models import Invoice, InvoiceCounter


class InvoiceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, invoice_id: int) -> Invoice | None:
        return self.session.get(Invoice, invoice_id)

    def list(self, user_id: int | None) -> Sequence[Invoice]:
        query = select(Invoice).order_by(Invoice.created_on, Invoice.id)
        if user_id is not None:
            query = query.where(Invoice.user_id == user_id)
        return self.session.scalars(query).all()

    def add(self, invoice: Invoice) -> Invoice:
        self.session.add(invoice)
        self.session.flush()
        return invoice

    def take_sequence_number(self, year: int) -> int:
        """The next number of ``year``, reserved until this transaction ends.

        One upsert statement: the counter row is created or incremented under its row
        lock (PostgreSQL) or the database write lock (SQLite), so concurrent creators
        queue up, and a rollback returns the number, keeping the sequence gapless.
        """
        insert = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        statement = (
            insert(InvoiceCounter)
            .values(year=year, last_seq=1)
            .on_conflict_do_update(
                index_elements=[InvoiceCounter.year],
                set_={"last_seq": InvoiceCounter.last_seq + 1},
            )
            .returning(InvoiceCounter.last_seq)
        )
        return int(self.session.execute(statement).scalar_one())
