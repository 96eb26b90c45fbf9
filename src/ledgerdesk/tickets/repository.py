"""Every ticket, reply and attachment query.

Customer lookups take the owner's id and put it in the query: another customer's
ticket is simply not found. Attachments are reached through their ticket, so the same
scoping covers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledgerdesk.db.models import Attachment, Reply, Ticket, User


@dataclass(frozen=True)
class ReplyRow:
    reply: Reply
    author_name: str


class TicketRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_all(self, *, user_id: int | None, status: int | None) -> Sequence[Ticket]:
        """Newest first; ``user_id`` None means every customer (staff view)."""
        query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc())
        if user_id is not None:
            query = query.where(Ticket.user_id == user_id)
        if status is not None:
            query = query.where(Ticket.status == status)
        return self.session.scalars(query).all()

    def get(self, ticket_id: int, *, user_id: int | None, lock: bool = False) -> Ticket | None:
        """One ticket, of this customer only unless ``user_id`` is None (staff).

        ``lock`` holds the row until the transaction ends (PostgreSQL; SQLite writers
        already hold the database lock), so concurrent status changes queue up.
        """
        query = select(Ticket).where(Ticket.id == ticket_id)
        if user_id is not None:
            query = query.where(Ticket.user_id == user_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def code_in_use(self, code: int) -> bool:
        return (
            self.session.scalars(select(Ticket.id).where(Ticket.code == code)).first() is not None
        )

    def add(self, row: Ticket | Reply | Attachment) -> None:
        self.session.add(row)
        self.session.flush()

    def replies(self, ticket_id: int) -> list[ReplyRow]:
        """Replies in the order they were stored, each with its author's name."""
        rows = self.session.execute(
            select(Reply, User.name)
            .join(User, User.id == Reply.author_id)
            .where(Reply.ticket_id == ticket_id)
            .order_by(Reply.id)
        ).all()
        return [ReplyRow(reply, name) for reply, name in rows]

    def attachments(self, ticket_id: int) -> Sequence[Attachment]:
        """All attachments of a ticket in one query (grouped by reply by the caller)."""
        return self.session.scalars(
            select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id)
        ).all()

    def attachment(self, ticket_id: int, attachment_id: int, *, user_id: int) -> Attachment | None:
        return self.session.scalars(
            select(Attachment)
            .join(Ticket, Ticket.id == Attachment.ticket_id)
            .where(
                Attachment.id == attachment_id,
                Attachment.ticket_id == ticket_id,
                Ticket.user_id == user_id,
            )
        ).one_or_none()
