"""Ticket writes: the rows a write locks, checks and adds (reads are in queries.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledgerdesk.db.models import (
    Attachment,
    MailMessage,
    MailOutbox,
    Reply,
    Ticket,
    TicketView,
    User,
)
from ledgerdesk.db.prepared import Prepared, PreparedInsert, session_db
from ledgerdesk.db.search import SearchIndex
from ledgerdesk.tickets.queries import AttachmentRecord, TicketRecord


class TicketRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def locked(self, ticket_id: int, *, user_id: int | None) -> Ticket | None:
        """One ticket to change, of this customer only unless ``user_id`` is None (staff).

        The row stays locked until the transaction ends (PostgreSQL; SQLite writers
        already hold the database lock), so concurrent changes to a ticket queue up.
        """
        query = select(Ticket).where(Ticket.id == ticket_id).with_for_update()
        if user_id is not None:
            query = query.where(Ticket.user_id == user_id)
        return self.session.scalars(query).one_or_none()

    def code_in_use(self, code: int) -> bool:
        # A prepared statement: this runs inside the write lock of every new ticket.
        return session_db(self.session).first(_CODE_IN_USE, code=code) is not None

    def insert_ticket(self, values: dict[str, Any]) -> TicketRecord:
        """A new ticket row; its record. A prepared INSERT, not the ORM's unit of work:
        every new ticket and reply holds the write lock (on SQLite, the whole
        database's) while this runs."""
        new_id = _TICKET.insert(session_db(self.session), values)
        SearchIndex(self.session).add_ticket(new_id)
        return TicketRecord(new_id, *(values[f] for f in TicketRecord._fields[1:]))

    def move_messages(self, source_id: int, target_id: int) -> int:
        """Move a ticket's messages, their files and the mail they came in as (and the
        mail sent about it, which threads later mail) to another ticket; how many
        messages moved. What was read of the source is forgotten."""
        moved = self.session.execute(
            update(Reply).where(Reply.ticket_id == source_id).values(ticket_id=target_id)
        ).rowcount  # type: ignore[attr-defined]
        for model in (Attachment, MailMessage, MailOutbox):
            self.session.execute(
                update(model).where(model.ticket_id == source_id).values(ticket_id=target_id)
            )
        self.session.execute(delete(TicketView).where(TicketView.ticket_id == source_id))
        return int(moved or 0)

    def turn_of(self, ticket_id: int) -> int:
        """Whose turn it is by the ticket's last public message: 2 (the customer's) when
        staff wrote it, else 1."""
        staff = self.session.scalar(
            select(User.is_staff)
            .join(Reply, Reply.author_id == User.id)
            .where(Reply.ticket_id == ticket_id, Reply.internal.is_(False))
            .order_by(Reply.id.desc())
            .limit(1)
        )
        return 2 if staff else 1

    def insert_reply(self, values: dict[str, Any]) -> int:
        """A new reply row (and its entry in the search index); its id."""
        reply_id = _REPLY.insert(session_db(self.session), values)
        SearchIndex(self.session).add_message(reply_id, values["content"])
        return reply_id

    def insert_attachment(self, values: dict[str, Any]) -> AttachmentRecord:
        """A new attachment row; its record."""
        new_id = _ATTACHMENT.insert(session_db(self.session), values)
        return AttachmentRecord(new_id, *(values[f] for f in AttachmentRecord._fields[1:]))


def mark_seen(session: Session, user_id: int, ticket_id: int, now: int) -> None:
    """The staff member has read the ticket up to now (bookkeeping: no event, as a
    session's last use). Two tabs at once: the later one wins, nothing fails."""
    changed = session.execute(
        update(TicketView)
        .where(TicketView.user_id == user_id, TicketView.ticket_id == ticket_id)
        .values(seen_at=now)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(TicketView(user_id=user_id, ticket_id=ticket_id, seen_at=now))
        except IntegrityError:
            pass  # the other tab made it a moment ago


# How long a page's word that someone is there, or typing, holds (the page says it again
# every PRESENT_EVERY seconds while open, and at once when its reply is being typed).
HERE_SECONDS = 45
TYPING_SECONDS = 15


def mark_present(session: Session, user_id: int, ticket_id: int, now: int, *, typing: bool) -> bool:
    """The staff member is on the ticket's page (and writing a reply there, ``typing``):
    bookkeeping, no event. False when there is no such ticket."""
    values = {
        "here_until": now + HERE_SECONDS,
        "typing_until": now + TYPING_SECONDS if typing else None,
    }
    changed = session.execute(
        update(TicketView)
        .where(TicketView.user_id == user_id, TicketView.ticket_id == ticket_id)
        .values(values)
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        return True
    if session.get(Ticket, ticket_id) is None:
        return False
    try:
        with session.begin_nested():
            # Not read yet (the page was opened before the ticket was merged here, say).
            session.add(TicketView(user_id=user_id, ticket_id=ticket_id, seen_at=0, **values))
    except IntegrityError:
        pass  # another tab made it a moment ago
    return True


def record_of(ticket: Ticket) -> TicketRecord:
    """A changed ticket as the services hand it back."""
    return TicketRecord(*(getattr(ticket, f) for f in TicketRecord._fields))


_TICKET = PreparedInsert(Ticket)
_REPLY = PreparedInsert(Reply)
_ATTACHMENT = PreparedInsert(Attachment)
_CODE_IN_USE = Prepared(select(Ticket.id).where(Ticket.code == bindparam("code")).limit(1))
