"""Every list query reads an index, in the order it returns rows: no table scan, no sort.

SQLite: ``EXPLAIN QUERY PLAN`` must name an index for each table and never build a
temporary B-tree for ORDER BY. PostgreSQL: with sequential scans and sorts priced out
(``enable_seqscan``/``enable_sort`` off), the plan must still have neither; had no index
served, the planner would have had to keep them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from sqlalchemy import create_engine

from ledgerdesk.db.prepared import Prepared
from ledgerdesk.invoices import queries as invoices
from ledgerdesk.tickets import queries as tickets

LIST_QUERIES: dict[str, Prepared] = {
    "getTicketOverview": tickets._OVERVIEW[(True, False)],
    "getTicketOverview by status": tickets._OVERVIEW[(True, True)],
    "getTicket replies": tickets._REPLIES[False],
    "getTicket replies (staff)": tickets._REPLIES[True],
    "getTicket attachments": tickets._ATTACHMENTS[False],
    "getTicket attachments (staff)": tickets._ATTACHMENTS[True],
    **{
        f"getInvoiceIds paid={paid} kind={kind}": invoices._IDS[paid, kind]
        for paid in (None, True, False)
        for kind in ("invoice", "credit_note", None)
    },
    "getInvoiceDetails with its lines": invoices._DETAILS_WITH_LINES,
    "an invoice's lines": invoices._LINES,
    "an invoice's credit notes": invoices._CREDIT_NOTES,
    "portal invoices": invoices._OF_CUSTOMER,
    "staff unpaid invoices": invoices._UNPAID[False],
    "staff overdue invoices": invoices._UNPAID[True],
    **{
        f"queue status={s} priority={p} customer={o} after={a}": tickets._queue(
            status=s, priority=p, owner=o, after=a
        )
        for s in (True, False)
        for p in (True, False)
        for o in (True, False)
        for a in (True, False)
        if s or o  # the queue always has a status or a customer (status "all")
    },
    **{
        f"queue due first, due {d}, after={a}": tickets._queue(
            status=True, priority=False, owner=False, after=a, due=d
        )
        for d in ("set", "unset")
        for a in (True, False)
    },
}

VALUES: dict[str, Any] = {
    "user_id": 1,
    "ticket_id": 1,
    "invoice_id": 1,
    "status": 1,
    "priority": 2,
    "first": date(2026, 1, 1),
    "last": date(2026, 12, 31),
    "today": date(2026, 11, 28),
    "after_time": 1,
    "after_id": 1,
    "limit": 51,
    "offset": 0,
    "match": '"kernel"*',
    "code": -1,
    "reader": 1,
}


def _plan(database_url: str, query: Prepared, *, off: tuple[str, ...] = ("seqscan", "sort")) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            raw: Any = connection.connection.driver_connection
            compiled = query.compiled(engine.dialect)
            if engine.dialect.name == "sqlite":
                names = compiled.positional or ()
                values = [VALUES.get(name, compiled.defaults.get(name)) for name in names]
                rows = raw.execute("EXPLAIN QUERY PLAN " + compiled.sql, values).fetchall()
                return "\n".join(row[3] for row in rows)
            names = re.findall(r"%\((\w+)\)s", compiled.sql)
            values = {name: VALUES.get(name, compiled.defaults.get(name)) for name in names}
            cursor = raw.cursor()
            for method in off:  # priced out (none: the planner's own choice)
                cursor.execute(f"SET enable_{method} = off")
            cursor.execute("EXPLAIN " + compiled.sql, values)
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", sorted(LIST_QUERIES))
def test_list_queries_read_an_index_in_order(database_url: str, name: str) -> None:
    plan = _plan(database_url, LIST_QUERIES[name])
    if database_url.startswith("sqlite"):
        assert "TEMP B-TREE" not in plan, plan
        for line in plan.splitlines():
            assert " USING " in line, plan  # SEARCH/SCAN ... USING (COVERING) INDEX / PK
    else:
        assert "Seq Scan" not in plan, plan
        assert not re.search(r"^\s*(->\s*)?Sort\b", plan, re.MULTILINE), plan


@pytest.mark.parametrize("sort", ["best", "waiting", "due"])
def test_the_search_reads_the_full_text_index(database_url: str, sort: str) -> None:
    """What a search finds comes from the index: a word found nowhere costs one lookup,
    never a read of every message. On PostgreSQL the planner weighs the words by their
    statistics: a word in most entries is found faster by reading the newest entries
    until enough match (it stops early), a rare one through the index."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    statement = tickets._search(
        dialect=backend,
        status=True,
        priority=False,
        owner=False,
        assignee="any",
        turn="any",
        tag=False,
        sort=sort,  # type: ignore[arg-type]
    )
    if backend == "sqlite":
        plan = _plan(database_url, statement)
        assert "SCAN search_fts VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN tickets" not in plan, plan
        assert "SCAN ticket_replies" not in plan, plan
        return
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            # A million messages' worth would take long here; this many, each with a
            # word of its own beside the common ones, gives the planner real statistics.
            connection.exec_driver_sql(
                "INSERT INTO search_entries (words) SELECT 'the server ' || g || ' is down '"
                " || md5(g::text) FROM generate_series(1, 100000) AS g"
            )
            connection.exec_driver_sql("ANALYZE search_entries")
    finally:
        engine.dispose()
    try:
        VALUES["match"] = "zzyzx"
        rare = _plan(database_url, statement, off=())
        VALUES["match"] = "server & down"
        common = _plan(database_url, statement, off=())
    finally:
        VALUES["match"] = '"kernel"*'
    assert "Bitmap Index Scan on ix_search_entries_search_vector" in rare, rare
    assert "pk_search_entries" not in rare, rare
    assert "Index Scan Backward using pk_search_entries" in common, common
    assert "Seq Scan on tickets" not in common, common
