"""Prepared inserts (the write path of new tickets): ids back, defaults as the ORM's."""

from __future__ import annotations

from sqlalchemy import select

from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Reply, Ticket
from ledgerdesk.db.prepared import PreparedInsert, session_db
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer


def test_a_row_gets_its_id_and_the_defaults_of_what_it_left_unset(runtime: Runtime) -> None:
    customer = make_customer(runtime)
    ticket = {
        "code": 12345678,
        "user_id": customer.user_id,
        "title": "Disk full",
        "status": 1,
        "priority": 2,
        "created_at": 1,
        "status_updated_at": 1,
        "last_updated_at": 1,
    }  # no reference: its default is ""
    with unit_of_work(runtime.sessions, write=True) as session:
        ticket_id = PreparedInsert(Ticket).insert(session_db(session), ticket)
        reply = {
            "ticket_id": ticket_id,
            "author_id": customer.user_id,
            "created_at": 2,
            "title": "t",
            "content": "c",
        }  # internal left unset: False
        reply_id = PreparedInsert(Reply).insert(session_db(session), reply)
    with unit_of_work(runtime.sessions, write=False) as session:
        stored = session.execute(select(Ticket.id, Ticket.reference)).one()
        assert tuple(stored) == (ticket_id, "")
        assert session.execute(select(Reply.id, Reply.internal)).one() == (reply_id, False)
