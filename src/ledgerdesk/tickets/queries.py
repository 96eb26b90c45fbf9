"""Reads on the request path for tickets, replies and attachments.

Customer reads put the owner's id in the query: another customer's ticket is simply not
found. Attachments are reached through their ticket, so the same scoping covers them.
The staff side (admin CLI) reads through the same statements with the owner left open.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Select

from ledgerdesk.db.models import Attachment, Reply, Ticket, User
from ledgerdesk.db.prepared import Db, Prepared


class TicketRecord(NamedTuple):
    id: int
    code: int
    user_id: int
    title: str
    reference: str
    status: int
    priority: int
    created_at: int
    status_updated_at: int
    last_updated_at: int


class ReplyRecord(NamedTuple):
    id: int
    author_id: int
    author_name: str
    created_at: int
    title: str
    content: str


class AttachmentRecord(NamedTuple):
    id: int
    reply_id: int
    name: str
    content_type: str
    size: int
    sha256: str


_TICKET_COLUMNS = [getattr(Ticket, field) for field in TicketRecord._fields]
_ATTACHMENT_COLUMNS = [getattr(Attachment, field) for field in AttachmentRecord._fields]


def _tickets(*, by_owner: bool, by_status: bool) -> Prepared:
    query: Select[*tuple[Any, ...]] = select(*_TICKET_COLUMNS)
    if by_owner:
        query = query.where(Ticket.user_id == bindparam("user_id"))
    if by_status:
        query = query.where(Ticket.status == bindparam("status"))
    return Prepared(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()))


# One prepared statement per filter combination: prepared SQL has no optional clauses.
_OVERVIEW = {
    (by_owner, by_status): _tickets(by_owner=by_owner, by_status=by_status)
    for by_owner in (True, False)
    for by_status in (True, False)
}
_TICKET_OF_OWNER = Prepared(
    select(*_TICKET_COLUMNS).where(
        Ticket.id == bindparam("ticket_id"), Ticket.user_id == bindparam("user_id")
    )
)
_TICKET = Prepared(select(*_TICKET_COLUMNS).where(Ticket.id == bindparam("ticket_id")))
_REPLIES = Prepared(
    select(Reply.id, Reply.author_id, User.name, Reply.created_at, Reply.title, Reply.content)
    .join(User, User.id == Reply.author_id)
    .where(Reply.ticket_id == bindparam("ticket_id"))
    .order_by(Reply.id)
)
_ATTACHMENTS = Prepared(
    select(*_ATTACHMENT_COLUMNS)
    .where(Attachment.ticket_id == bindparam("ticket_id"))
    .order_by(Attachment.id)
)
_ATTACHMENT_OF_OWNER = Prepared(
    select(*_ATTACHMENT_COLUMNS)
    .join(Ticket, Ticket.id == Attachment.ticket_id)
    .where(
        Attachment.id == bindparam("attachment_id"),
        Attachment.ticket_id == bindparam("ticket_id"),
        Ticket.user_id == bindparam("user_id"),
    )
)


class TicketQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    def tickets(self, *, user_id: int | None, status: int | None) -> list[TicketRecord]:
        """Newest first (then highest id); ``user_id`` None means every customer's."""
        query = _OVERVIEW[(user_id is not None, status is not None)]
        params = {"user_id": user_id, "status": status}
        return [
            TicketRecord(*row)
            for row in self.db.rows(query, **{k: v for k, v in params.items() if v is not None})
        ]

    def ticket(self, ticket_id: int, *, user_id: int | None) -> TicketRecord | None:
        row = (
            self.db.first(_TICKET, ticket_id=ticket_id)
            if user_id is None
            else self.db.first(_TICKET_OF_OWNER, ticket_id=ticket_id, user_id=user_id)
        )
        return None if row is None else TicketRecord(*row)

    def replies(self, ticket_id: int) -> list[ReplyRecord]:
        """In the order they were stored, each with its author's name."""
        return [ReplyRecord(*row) for row in self.db.rows(_REPLIES, ticket_id=ticket_id)]

    def attachments(self, ticket_id: int) -> list[AttachmentRecord]:
        """Every attachment of a ticket in one query (the caller groups them by reply)."""
        return [AttachmentRecord(*row) for row in self.db.rows(_ATTACHMENTS, ticket_id=ticket_id)]

    def attachment(
        self, ticket_id: int, attachment_id: int, *, user_id: int
    ) -> AttachmentRecord | None:
        row = self.db.first(
            _ATTACHMENT_OF_OWNER, ticket_id=ticket_id, attachment_id=attachment_id, user_id=user_id
        )
        return None if row is None else AttachmentRecord(*row)
