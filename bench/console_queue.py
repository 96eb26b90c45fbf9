"""How fast the staff console's queue and search answer with a million messages.

    python bench/console_queue.py [--tickets 200000] [--messages-per-ticket 5]
                                  [--customers 10000] [--requests 100]
                                  [--database-url URL] [--json results.json]

Seeds the customers, tickets and messages in bulk (with their search index entries,
folded as the server folds them), starts `ledgerdesk serve` (one worker) on loopback,
signs a staff member in, and times full page loads over HTTP, one at a time (the time a
person waits): the queue as it opens, with filters, sorted by due time, a tenth page,
and searches: a word found nowhere, a customer's name, a ticket's number, a rare word
and a common one. Nothing is cached between requests: each page runs its queries and
renders its template.

The open tickets counted by priority at the top of the queue are reused while the event
log has not moved (nothing happens during the loads); "queue, the log moving" records an
event before each load, so each counts them again.

The messages are made of a vocabulary of 5,000 words drawn with Zipf's law (a few words
in most messages, most words in few), as a helpdesk's text is. Prints median and 95th
percentile per page; the goal is a median under 50 ms. Without --database-url, a fresh
SQLite database in a temporary directory.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import insert, text

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings, normalize_database_url
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import Reply, SearchEntry, Ticket, User
from ledgerdesk.db.search import ticket_words, words
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.runtime import Runtime

PASSWORD = "bench password 123"  # noqa: S105  # a throwaway account of the benchmark
COMMON = [
    *("server", "unreachable", "packet", "loss", "reverse", "dns", "invoice", "vat"),
    *("backup", "restore", "disk", "raid", "kernel", "panic", "bandwidth", "ddos"),
    *("firewall", "ipv6", "migration", "upgrade", "ram", "cpu", "latency", "the", "is"),
    *("our", "please", "since", "after", "we", "you", "can", "not", "and", "a", "to"),
]
NAMES = ["Zoë", "Ana", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "Grete", "Hugo", "Inès"]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """The common words first, then made-up ones: rank n drawn with weight 1/n."""
    made = {
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randrange(4, 11)))
        for _ in range(size * 2)
    }
    return [*COMMON, *sorted(made)[: size - len(COMMON)]]


def seed(runtime: Runtime, tickets: int, per_ticket: int, customers: int) -> str:
    """Customers, tickets, their messages and search entries in bulk; a staff member."""
    rng = random.Random(7)
    now = int(time.time())
    vocab = vocabulary(rng)
    weights = list(itertools.accumulate(1 / (n + 1) for n in range(len(vocab))))
    with runtime.work(Actor.SYSTEM, Origin("system")) as work:
        staff = AccountService(work).create_user(
            name="Bench Staff", email="staff@bench.example", staff=True, admin=True
        )
        other = AccountService(work).create_user(
            name="Other Agent", email="other@bench.example", staff=True
        )
        people = PeopleService.of(work)
        people.set_password_with_link(
            people.issue_link(staff.id, "invite", now=now), PASSWORD, now=now
        )
        agents = [staff.id, other.id, None]
    # Surnames of their own (no message holds them), a few customers each.
    surnames = sorted(
        {"".join(rng.choices("bcdfghklmnprstvz", k=3)).capitalize() + "ström" for _ in range(4000)}
    )
    people_rows = [
        {
            "name": f"{rng.choice(NAMES)} {surnames[n % len(surnames)]}",
            "email": f"customer{n}@example.net",
            "is_staff": False,
            "is_admin": False,
            "created_at": now,
        }
        for n in range(customers)
    ]
    with runtime.transaction(write=True) as (session, _):
        first_customer = int(session.scalar(text("SELECT max(id) FROM users"))) + 1
        session.execute(insert(User), people_rows)
    batch = 10_000
    codes = rng.sample(range(10_000_000, 100_000_000), tickets)
    reply_id = 0
    for start in range(0, tickets, batch):
        rows, replies, entries = [], [], []
        for n in range(start, min(tickets, start + batch)):
            created = now - rng.randrange(90 * 86400)
            updated = created + rng.randrange(max(1, now - created))
            status = rng.choices((1, 0, 2), weights=(1, 1.8, 0.2))[0]
            customer = rng.randrange(customers)
            row = {
                "id": n + 1,
                "code": codes[n],
                "user_id": first_customer + customer,
                "title": " ".join(rng.choices(vocab, cum_weights=weights, k=5)),
                "reference": f"ORD-{n}" if n % 7 == 0 else "",
                "status": status,
                "priority": rng.choices((1, 2, 3, 4), weights=(2, 5, 2, 1))[0],
                "created_at": created,
                "status_updated_at": updated,
                "last_updated_at": updated,
                "assignee_id": rng.choice(agents),
                "turn": rng.choice((1, 2)),
                "customer_said_at": updated,
                "due_at": updated + rng.randrange(-86400, 3 * 86400) if status == 1 else None,
            }
            rows.append(row)
            entries.append(
                {
                    "ticket_id": row["id"],
                    "words": ticket_words(
                        row["code"],
                        row["title"],
                        row["reference"],
                        people_rows[customer]["name"],
                        people_rows[customer]["email"],
                    ),
                }
            )
            for m in range(per_ticket):
                reply_id += 1
                content = " ".join(rng.choices(vocab, cum_weights=weights, k=40))
                replies.append(
                    {
                        "id": reply_id,
                        "ticket_id": row["id"],
                        "author_id": row["user_id"] if m % 2 == 0 else staff.id,
                        "created_at": created + m * 60,
                        "title": row["title"],
                        "content": content,
                        "internal": False,
                    }
                )
                entries.append({"reply_id": reply_id, "words": words(content)})
        with runtime.transaction(write=True) as (session, _):
            session.execute(insert(Ticket), rows)
            session.execute(insert(Reply), replies)
            session.execute(insert(SearchEntry), entries)
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as connection:
            for table in ("tickets", "ticket_replies", "users", "search_entries"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id))"  # noqa: S608
                    f" FROM {table}"
                )
            connection.commit()
        # What autovacuum does after a bulk load (it runs on inserts since PostgreSQL 13):
        # statistics, and the visibility map that lets counts read the index alone.
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        with runtime.engine.connect() as connection:
            connection.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
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


def time_page(
    client: httpx.Client, path: str, requests: int, before: Callable[[], None] | None = None
) -> dict[str, float]:
    for _ in range(5):  # warm up: compiled statements, template cache, page cache
        assert client.get(path).status_code == 200
    samples = []
    for _ in range(requests):
        if before is not None:
            before()  # (not timed)
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


def move_the_log(runtime: Runtime) -> None:
    """An event, as any change would record (of a type no page or relay acts on)."""
    with runtime.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO events (type, created_at, door, actor_kind, payload)"
            " VALUES ('bench.moved', 0, 'cli', 'system', '{}')"
        )


def sample(runtime: Runtime) -> tuple[int, str]:
    """A ticket's number and a word of a customer's name (found in the seeded data)."""
    with runtime.transaction(write=False) as (session, _):
        code = session.scalar(text("SELECT code FROM tickets WHERE id = 4242"))
        name = session.scalar(text("SELECT name FROM users WHERE email = 'customer77@example.net'"))
    assert code is not None
    assert name is not None
    return int(code), name


def rare_word() -> str:
    """A word of the vocabulary's long tail, in a few dozen messages at most."""
    return vocabulary(random.Random(7))[4000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--messages-per-ticket", type=int, default=5)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the SQLite database and the server's files go; a database seeded"
        " there by an earlier run is used again (--seeded)",
    )
    parser.add_argument("--seeded", action="store_true", help="the database is seeded already")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ledgerdesk-queue-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    url = normalize_database_url(
        args.database_url or f"sqlite+pysqlite:///{data_dir}/ledgerdesk.sqlite3"
    )
    settings = Settings(database_url=url, data_dir=data_dir)
    runtime = Runtime.build(settings)
    upgrade(runtime.engine)
    began = time.perf_counter()
    email = (
        "staff@bench.example"
        if args.seeded
        else seed(runtime, args.tickets, args.messages_per_ticket, args.customers)
    )
    seeded = time.perf_counter() - began
    messages = args.tickets * args.messages_per_ticket
    if not args.seeded:
        print(
            f"seeded {args.tickets:,} tickets with {messages:,} messages for"
            f" {args.customers:,} customers in {seeded:.1f} s"
        )

    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "LEDGERDESK_DATABASE_URL": url,
        "LEDGERDESK_DATA_DIR": str(data_dir),
    }
    log = (data_dir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "ledgerdesk", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # a minute at most
            assert server.poll() is None, f"the server stopped: see {data_dir / 'server.log'}"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as client:
            sign_in(client, email)
            code, customer = sample(runtime)
            pages = {
                "queue (open, longest waiting)": "/console/tickets",
                "queue: mine, our turn, high": "/console/tickets?owner=mine&turn=ours&priority=3",
                "queue: unassigned, due first": "/console/tickets?owner=unassigned&sort=due",
                "queue sorted by due time": "/console/tickets?sort=due",
                "queue sorted by priority": "/console/tickets?sort=priority",
                "tenth page (keyset)": tenth_page(client),
                "search: found nowhere (open)": "/console/tickets?q=zzyzx+qwfp",
                "search: found nowhere (all)": "/console/tickets?q=zzyzx&status=all",
                "search: a ticket's number": f"/console/tickets?q=%23{code}&status=all",
                "search: a customer's name": f"/console/tickets?q={customer}&status=all".replace(
                    " ", "+"
                ),
                "search: a rare word": "/console/tickets?q=" + rare_word(),
                "search: two common words": "/console/tickets?q=kernel+panic",
            }
            results = {name: time_page(client, path, args.requests) for name, path in pages.items()}
            # The open tickets by priority are counted again only once the event log has
            # moved: with an event before every load, each load counts them.
            results["queue, the log moving"] = time_page(
                client, "/console/tickets", args.requests, lambda: move_the_log(runtime)
            )
    finally:
        server.terminate()
        server.wait(timeout=15)
        runtime.close()
    backend = runtime.engine.dialect.name
    print(
        f"{backend}, {args.tickets:,} tickets, {messages:,} messages,"
        f" {args.requests} sequential page loads each:"
    )
    for name, figures in results.items():
        print(
            f"  {name:<32} median {figures['median_ms']:>7.2f} ms  p95 {figures['p95_ms']:>7.2f} ms"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "backend": backend,
                    "tickets": args.tickets,
                    "messages": messages,
                    "pages": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
