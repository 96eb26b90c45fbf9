"""Bulk data for the realistic benchmark: many customers, a million tickets and invoices.

Rows are written straight through the driver (SQLite ``executemany``, PostgreSQL
``COPY``) into a database migrated to the current schema, so a million rows take
seconds, not the hours that one API call per row would. The layout is arithmetic, so
the load script can pick a random customer and name one of its tickets or invoices
without a lookup:

- user 1 is a staff member; customer ``c`` (1..customers) is user ``c + 1``;
- API key ``c`` belongs to customer ``c``; its secret is ``key_secret(c)``;
- ticket ``t`` (1..tickets) belongs to customer ``(t - 1) % customers + 1``, so customer
  ``c`` owns tickets ``c, c + customers, c + 2 * customers, ...``; likewise invoices;
- every ticket has the customer's message and a staff answer (two replies).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, create_engine, insert, make_url, text
from sqlalchemy.dialects import sqlite

from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import Base
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import store_due_fingerprint

STAFF_ID = 1
STATUSES = (1, 1, 0, 2)  # mostly open, some closed, a few forcibly closed
BODY = (
    "Our server in rack 12 stopped answering on port 443 after the maintenance window. "
    "We restarted nginx twice; the health check still fails. Could you have a look?"
)
ANSWER = (
    "Thank you for the report. The upstream switch port was left disabled after the "
    "maintenance; it is enabled again and the health check passes from our side."
)


def key_secret(customer: int) -> str:
    """The API key of customer ``c``: 20 letters and digits, as every key is."""
    return f"bench{customer:015d}"


@dataclass(frozen=True)
class Layout:
    customers: int
    tickets: int
    invoices: int

    def owner(self, row_id: int) -> int:
        """The user id that owns ticket or invoice ``row_id``."""
        return (row_id - 1) % self.customers + 2


Row = tuple[Any, ...]


def _users(layout: Layout, now: int) -> Iterator[Row]:
    yield (STAFF_ID, "Support", "support@bench.invalid", True, True, now)
    for c in range(1, layout.customers + 1):
        yield (c + 1, f"Customer {c}", f"customer{c}@bench.invalid", False, False, now)


def _keys(layout: Layout, now: int) -> Iterator[Row]:
    for c in range(1, layout.customers + 1):
        digest = hashlib.sha256(key_secret(c).encode()).hexdigest()
        yield (c, c + 1, digest, "", now, 0)


def _tickets(layout: Layout, now: int) -> Iterator[Row]:
    step = max(1, 365 * 86400 // layout.tickets)  # a year of tickets, oldest first
    for t in range(1, layout.tickets + 1):
        created = now - (layout.tickets - t + 1) * step
        status = STATUSES[t % len(STATUSES)]
        updated = created + 3600
        yield (
            t,
            10_000_000 + t,
            layout.owner(t),
            f"Port 443 unreachable on server {t}",
            f"REF-{t}",
            status,
            t % 4 + 1,
            created,
            updated,
            updated,
            2,  # the customer's turn: staff answered last
            created,  # the customer's message
        )


def _replies(layout: Layout, now: int) -> Iterator[Row]:
    step = max(1, 365 * 86400 // layout.tickets)
    for t in range(1, layout.tickets + 1):
        created = now - (layout.tickets - t + 1) * step
        title = f"Port 443 unreachable on server {t}"
        yield (2 * t - 1, t, layout.owner(t), created, title, BODY, False)
        yield (2 * t, t, STAFF_ID, created + 3600, title, ANSWER, False)


def _invoices(layout: Layout, today: date) -> Iterator[Row]:
    for i in range(1, layout.invoices + 1):
        created = today - timedelta(days=(layout.invoices - i) * 730 // layout.invoices)
        paid = created + timedelta(days=10) if created < today - timedelta(days=40) else None
        amount = _amount(i)
        vat = (amount * 2100 + 5000) // 10000
        yield (
            i,
            layout.owner(i),
            f"B{i:09d}",
            "Dedicated server",
            "Monthly rent, 1 Gbit/s unmetered",
            created,
            created + timedelta(days=30),
            amount,
            vat,
            2100,
            paid,
            "EUR",
            0 if paid is None else amount + vat,
        )


def _amount(invoice_id: int) -> int:
    return 35_000 + invoice_id % 1000


def _invoice_lines(layout: Layout) -> Iterator[Row]:
    """One line an invoice, as every invoice has at least one."""
    for i in range(1, layout.invoices + 1):
        amount = _amount(i)
        yield (i, 1, "Dedicated server, monthly rent", 10_000, amount * 100, "S", 2100, amount)


TABLES: Sequence[tuple[str, tuple[str, ...], Callable[[Layout, int, date], Iterable[Row]]]] = (
    (
        "users",
        ("id", "name", "email", "is_staff", "is_admin", "created_at"),
        lambda lay, n, d: _users(lay, n),
    ),
    (
        "api_keys",
        ("id", "user_id", "key_hash", "note", "created_at", "use_count"),
        lambda lay, n, d: _keys(lay, n),
    ),
    (
        "tickets",
        (
            "id",
            "code",
            "user_id",
            "title",
            "reference",
            "status",
            "priority",
            "created_at",
            "status_updated_at",
            "last_updated_at",
            "turn",
            "customer_said_at",
        ),
        lambda lay, n, d: _tickets(lay, n),
    ),
    (
        "ticket_replies",
        ("id", "ticket_id", "author_id", "created_at", "title", "content", "internal"),
        lambda lay, n, d: _replies(lay, n),
    ),
    (
        "invoices",
        (
            "id",
            "user_id",
            "number",
            "title",
            "description",
            "created_on",
            "pay_before",
            "amount_excl_vat_cents",
            "vat_cents",
            "vat_perc_hundredths",
            "paid_on",
            "currency",
            "paid_cents",
        ),
        lambda lay, n, d: _invoices(lay, d),
    ),
    (
        "invoice_lines",
        (
            "invoice_id",
            "position",
            "description",
            "quantity_e4",
            "unit_price_e4",
            "category",
            "rate",
            "net_cents",
        ),
        lambda lay, n, d: _invoice_lines(lay),
    ),
)


def _batches(rows: Iterable[Row], size: int = 50_000) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(settings: Settings, layout: Layout, now: int, today: date) -> dict[str, float]:
    """Migrate an empty database and fill it; the seconds each table took."""
    runtime = Runtime.build(settings)
    try:
        upgrade(runtime.engine)
        # The seeded tickets get no due times (the benchmark reads the API): the servers
        # need not compute them at start-up, beside the load being measured.
        with runtime.transaction(write=True) as (session, _):
            store_due_fingerprint(session, runtime.service_levels)
    finally:
        runtime.engine.dispose()
    timings: dict[str, float] = {}
    if settings.is_sqlite:
        path = sqlite_path(settings)
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            for table, columns, rows in TABLES:
                started = time.perf_counter()
                sql = str(
                    insert(Base.metadata.tables[table])
                    .values({name: bindparam(name) for name in columns})
                    .compile(dialect=sqlite.dialect())
                )
                for batch in _batches(rows(layout, now, today)):
                    connection.executemany(sql, batch)
                connection.commit()
                timings[table] = time.perf_counter() - started
            started = time.perf_counter()
            connection.execute("ANALYZE")
            connection.commit()
            timings["analyze"] = time.perf_counter() - started
        finally:
            connection.close()
        return timings
    import psycopg
    from psycopg import sql

    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        for table, columns, rows in TABLES:
            started = time.perf_counter()
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with connection.cursor() as cursor:
                with cursor.copy(copy_sql) as copy:
                    for row in rows(layout, now, today):
                        copy.write_row(row)
                # Move the id sequence past the rows written with explicit ids.
                if "id" in columns:  # invoice_lines is keyed by its invoice, not an id
                    cursor.execute(
                        sql.SQL(
                            "SELECT setval(pg_get_serial_sequence(%s, 'id'),"
                            " (SELECT max(id) FROM {}))"
                        ).format(sql.Identifier(table)),
                        (table,),
                    )
            timings[table] = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute("VACUUM ANALYZE")
        timings["analyze"] = time.perf_counter() - started
    return timings


def recreate_postgres_database(admin_url: str, name: str) -> None:
    """Drop and create an empty database (the benchmark's own, never a user's)."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def sqlite_path(settings: Settings) -> str:
    """The file of a SQLite database URL."""
    return make_url(settings.database_url).database or ""
