"""What recording an event adds to a write.

    python bench/events.py [--writes 2000] [--rounds 3] [--postgres-url URL]

Creates tickets through the domain service, one unit of work each (the API's
createTicket without HTTP), on SQLite and PostgreSQL: once as the server does (the
ticket's rows, then its event and, on PostgreSQL, the events table's lock just before
the commit), once with the event dropped before it is written. Alternating rounds; the
difference of the medians per write is the cost of the event.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import TicketService


def writes(runtime: Runtime, customer: int, count: int, *, record: bool) -> float:
    """Seconds per write."""
    began = time.perf_counter()
    for n in range(count):
        with runtime.work(Actor.customer(customer), Origin("api", "127.0.0.1", f"r{n}")) as work:
            TicketService(work).create(
                customer_id=customer,
                title=f"Ticket {n}",
                content="The server stopped answering.",
                reference="",
                priority=2,
                files=[],
            )
            if not record:
                work._pending.clear()  # the event is dropped before the commit writes it
    return (time.perf_counter() - began) / count


def measure(database_url: str, data_dir: Path, count: int, rounds: int) -> None:
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=data_dir))
    upgrade(runtime.engine)
    with runtime.work(Actor.SYSTEM, Origin("system")) as work:
        customer = AccountService(work).create_user(name="Bench", email=None, staff=False).id
    with_event: list[float] = []
    without: list[float] = []
    writes(runtime, customer, 100, record=True)  # warm up
    for _ in range(rounds):
        with_event.append(writes(runtime, customer, count, record=True))
        without.append(writes(runtime, customer, count, record=False))
    runtime.close()
    a, b = statistics.median(with_event), statistics.median(without)
    print(
        f"{runtime.settings.database_url.split(':')[0]}: {b * 1e6:,.0f} µs a write without "
        f"its event, {a * 1e6:,.0f} µs with it: +{(a - b) * 1e6:,.0f} µs ({a / b - 1:+.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        measure(f"sqlite+pysqlite:///{data}/bench.sqlite3", data, args.writes, args.rounds)
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS ledgerdesk_bench_events"))
            connection.execute(text("CREATE DATABASE ledgerdesk_bench_events"))
        url = args.postgres_url.rsplit("/", 1)[0] + "/ledgerdesk_bench_events"
        try:
            measure(url, data, args.writes, args.rounds)
        finally:
            with admin.connect() as connection:
                connection.execute(text("DROP DATABASE IF EXISTS ledgerdesk_bench_events"))
            admin.dispose()


if __name__ == "__main__":
    main()
