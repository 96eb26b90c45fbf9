"""How fast the staff console's ticket queue renders with 100,000 tickets.

    python bench/console_queue.py [--tickets 100000] [--customers 5000] [--requests 200]
                                  [--database-url URL] [--json results.json]

Seeds the tickets (one message each, spread over the customers, statuses and
priorities) in bulk, starts `ledgerdesk serve` (one worker) on loopback, signs a staff
member in, and times full page loads over HTTP, one at a time (the time a person
waits): the default queue (open tickets, longest waiting first), sorted by priority,
one customer's tickets, the tenth page (keyset), and a free-text search. Nothing is
cached between requests: each page runs its queries and renders its template.

Prints median and 95th percentile per page; the goal is a median under 50 ms for the
queue. Without --database-url, a fresh SQLite database in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings, normalize_database_url
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import Reply, Ticket, User
from ledgerdesk.runtime import Runtime

PASSWORD = "bench password 123"  # noqa: S105  # a throwaway account of the benchmark
WORDS = [
    *("server", "unreachable", "packet", "loss", "reverse", "dns", "invoice", "vat"),
    *("backup", "restore", "disk", "raid", "kernel", "panic", "bandwidth", "ddos"),
    *("firewall", "ipv6", "migration", "upgrade", "ram", "cpu", "latency"),
]


def seed(runtime: Runtime, tickets: int, customers: int) -> str:
    """Customers, tickets and their first messages in bulk; a staff member to sign in."""
    rng = random.Random(7)
    now = int(time.time())
    with unit_of_work(runtime.sessions, write=True) as session:
        session.execute(
            insert(User),
            [
                {"name": f"Customer {n}", "email": None, "is_staff": False, "created_at": now}
                for n in range(customers)
            ],
        )
        staff = AccountService(AccountRepository(session)).create_user(
            name="Bench Staff", email="staff@bench.example", staff=True, now=now
        )
        people = PeopleService(session)
        people.set_password_with_link(
            people.issue_link(staff.id, "invite", now=now), PASSWORD, now=now
        )
    first_customer = 1
    batch = 20_000
    codes = rng.sample(range(10_000_000, 100_000_000), tickets)
    for start in range(0, tickets, batch):
        rows = []
        for n in range(start, min(tickets, start + batch)):
            created = now - rng.randrange(90 * 86400)
            updated = created + rng.randrange(max(1, now - created))
            rows.append(
                {
                    "id": n + 1,
                    "code": codes[n],
                    "user_id": first_customer + rng.randrange(customers),
                    "title": " ".join(rng.choices(WORDS, k=5)),
                    "reference": "",
                    # A third open, as in a busy helpdesk; the rest closed or forced.
                    "status": rng.choices((1, 0, 2), weights=(1, 1.8, 0.2))[0],
                    "priority": rng.choices((1, 2, 3, 4), weights=(2, 5, 2, 1))[0],
                    "created_at": created,
                    "status_updated_at": updated,
                    "last_updated_at": updated,
                }
            )
        with unit_of_work(runtime.sessions, write=True) as session:
            session.execute(insert(Ticket), rows)
            session.execute(
                insert(Reply),
                [
                    {
                        "ticket_id": row["id"],
                        "author_id": row["user_id"],
                        "created_at": row["created_at"],
                        "title": row["title"],
                        "content": " ".join(rng.choices(WORDS, k=40)),
                        "internal": False,
                    }
                    for row in rows
                ],
            )
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as connection:
            connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('tickets', 'id'), max(id)) FROM tickets"
            )
            connection.commit()
        # What autovacuum does after a bulk load (it runs on inserts since PostgreSQL 13):
        # statistics, and the visibility map that lets counts read the index alone.
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        with runtime.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    return "staff@bench.example"


def sign_in(client: httpx.Client, email: str) -> None:
    page = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    answer = client.post(
        "/signin", data={"csrf": token.group(1), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console", answer.text


def time_page(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(5):  # warm up: compiled statements, template cache, page cache
        assert client.get(path).status_code == 200
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text[:500]
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
    }


def tenth_page(client: httpx.Client) -> str:
    path = "/console/tickets"
    for _ in range(9):
        found = re.search(r'rel="next" href="([^"]+)"', client.get(path).text)
        assert found, "fewer than ten pages"
        path = "/console/tickets" + found.group(1).replace("&amp;", "&")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-queue-"))
    url = normalize_database_url(
        args.database_url or f"sqlite+pysqlite:///{data_dir}/ledgerdesk.sqlite3"
    )
    settings = Settings(database_url=url, data_dir=data_dir)
    runtime = Runtime.build(settings)
    upgrade(runtime.engine)
    began = time.perf_counter()
    email = seed(runtime, args.tickets, args.customers)
    seeded = time.perf_counter() - began
    runtime.close()
    print(f"seeded {args.tickets:,} tickets for {args.customers:,} customers in {seeded:.1f} s")

    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "LEDGERDESK_DATABASE_URL": url,
        "LEDGERDESK_DATA_DIR": str(data_dir),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "ledgerdesk", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as client:
            sign_in(client, email)
            pages = {
                "queue (open, longest waiting)": "/console/tickets",
                "queue sorted by priority": "/console/tickets?sort=priority",
                "one customer's tickets": "/console/tickets?status=all&customer=42",
                "tenth page (keyset)": tenth_page(client),
                "search 'kernel panic'": "/console/tickets?q=kernel+panic",
            }
            results = {name: time_page(client, path, args.requests) for name, path in pages.items()}
    finally:
        server.terminate()
        server.wait(timeout=15)
    backend = runtime.engine.dialect.name
    print(f"{backend}, {args.tickets:,} tickets, {args.requests} sequential page loads each:")
    for name, figures in results.items():
        print(
            f"  {name:<32} median {figures['median_ms']:>7.2f} ms  p95 {figures['p95_ms']:>7.2f} ms"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"backend": backend, "tickets": args.tickets, "pages": results}, indent=2)
        )


if __name__ == "__main__":
    main()
