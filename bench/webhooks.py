"""Webhook delivery: events per second, and the time from an event's commit to its
delivery, with one and with two server processes.

    python bench/webhooks.py [--events 10000] [--rate 200] [--database-url URL]

For each number of servers (1, then 2; ``ledgerdesk serve``, the relay inside):

- **backlog**: ``--events`` events are committed while no server runs (tickets created
  through the domain service, a hundred to a transaction), then the servers start and
  deliver them to a local receiver: events delivered per second, from the servers'
  start to the last delivery (an unordered endpoint, so both servers can share it;
  and the same with an ordered one, which one relay serves at a time).
- **latency**: with the servers running, tickets are created through the first
  server's API at ``--rate`` a second, ``--events / 5`` of them; the median and p99 of
  the time from the API's answer (the commit) to the event's arrival at the receiver.

The receiver is a separate process (an asyncio server answering 200 at once) that
notes when each ``webhook-id`` first arrives. Everything runs on loopback on this
machine: servers, receiver, database and the producing process share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, delete, select, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ledgerdesk.accounts.service import AccountService  # noqa: E402
from ledgerdesk.config import Settings  # noqa: E402
from ledgerdesk.db.migrate import upgrade  # noqa: E402
from ledgerdesk.db.models import (  # noqa: E402
    DomainEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from ledgerdesk.events.log import EventLog  # noqa: E402
from ledgerdesk.events.work import Actor, Origin  # noqa: E402
from ledgerdesk.runtime import Runtime  # noqa: E402
from ledgerdesk.tickets.service import TicketService  # noqa: E402
from ledgerdesk.webhooks.service import WebhookService  # noqa: E402
from servers import start_ledgerdesk, stop  # noqa: E402


def receive(
    port_out: multiprocessing.connection.Connection, results: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    """The receiver process: answer 200, note each id's first arrival (time.time())."""
    arrivals: dict[str, float] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                webhook_id = ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"webhook-id":
                        webhook_id = value.strip().decode()
                await reader.readexactly(length)
                arrivals.setdefault(webhook_id, time.time())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, port_out.recv)  # "stop"
        results.put(arrivals)
        server.close()

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        self.here, there = multiprocessing.Pipe()
        self.results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        self.process = multiprocessing.Process(target=receive, args=(there, self.results))
        self.process.start()
        self.port: int = self.here.recv()

    def finish(self) -> dict[str, float]:
        self.here.send("stop")
        arrivals: dict[str, float] = self.results.get(timeout=60)
        self.process.join(10)
        return arrivals


def reset(runtime: Runtime) -> None:
    with runtime.transaction(write=True) as (session, _):
        for model in (WebhookAttempt, WebhookDelivery, WebhookEndpoint):
            session.execute(delete(model))


def endpoint(runtime: Runtime, port: int, *, ordered: bool) -> None:
    with runtime.work(Actor.SYSTEM, Origin("cli")) as work:
        WebhookService.of(work, runtime.settings).create(
            url=f"http://127.0.0.1:{port}/", event_types=["ticket.created"], ordered=ordered
        )


def commit_tickets(runtime: Runtime, customer: int, count: int, per_transaction: int) -> list[int]:
    ids = []
    service_origin = Origin("api", "127.0.0.1")
    for start in range(0, count, per_transaction):
        with runtime.work(Actor.customer(customer), service_origin) as work:
            for n in range(start, min(start + per_transaction, count)):
                TicketService(work).create(
                    customer_id=customer,
                    title=f"T{n}",
                    content="x",
                    reference="",
                    priority=2,
                    files=[],
                )
        with runtime.transaction(write=False) as (session, _):
            ids.append(EventLog(session).last_id())
    return ids


def pending(runtime: Runtime) -> int:
    with runtime.transaction(write=False) as (session, _):
        return int(
            session.scalar(
                select(text("count(*)"))
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.state == "pending")
            )
            or 0
        )


def backlog(
    runtime: Runtime, env: dict[str, str], customer: int, servers: int, events: int, ordered: bool
) -> float:
    reset(runtime)
    receiver = Receiver()
    endpoint(runtime, receiver.port, ordered=ordered)
    first = _last_id(runtime)
    commit_tickets(runtime, customer, events, 100)
    began = time.time()
    processes = [start_ledgerdesk(env)[0] for _ in range(servers)]
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if _delivered(runtime) >= events:
                break
    finally:
        for process in processes:
            stop(process)
    arrivals = receiver.finish()
    ours = [t for webhook_id, t in arrivals.items() if int(webhook_id) > first]
    if len(ours) < events:
        print(f"  only {len(ours)} of {events} arrived")
    return len(ours) / (max(ours) - began) if ours else 0.0


def latency(
    runtime: Runtime, env: dict[str, str], customer: int, servers: int, events: int, rate: float
) -> tuple[float, float, float]:
    """Tickets created through the API of the first server, one a request at ``rate``:
    the event commits in that server's process, which wakes its relay at once (the
    second server hears of it from PostgreSQL's NOTIFY, or at its next look on SQLite)."""
    reset(runtime)
    receiver = Receiver()
    endpoint(runtime, receiver.port, ordered=True)
    with runtime.work(Actor.SYSTEM, Origin("cli")) as work:
        secret = (
            AccountService(work)
            .create_key(
                user_id=customer, categories=(), ip_ranges=(), expires_on=None, note="bench"
            )
            .secret
        )
    started = [start_ledgerdesk(env) for _ in range(servers)]
    answered: dict[int, float] = {}  # ticket id -> when the API answered (committed)
    try:
        time.sleep(1)
        api = f"http://127.0.0.1:{started[0][1]}/api/rest/v2/administration"
        with httpx.Client() as client:
            interval = 1 / rate
            next_at = time.monotonic()
            for n in range(events):
                next_at += interval
                body = {
                    "userId": customer,
                    "apiKey": secret,
                    "action": "createTicket",
                    "title": f"Bench {n}",
                    "content": "x",
                    "priorityId": 2,
                }
                response = client.post(api, json=body)
                answered[int(response.json()["data"]["ticketId"])] = time.time()
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _delivered(runtime) < events:
            time.sleep(0.2)
    finally:
        for process, _ in started:
            stop(process)
    arrivals = receiver.finish()
    with runtime.transaction(write=False) as (session, _):
        found = session.execute(
            select(DomainEvent.subject_id, DomainEvent.id).where(
                DomainEvent.type == "ticket.created",
                DomainEvent.subject_id.in_(list(answered)),
            )
        )
        event_of = {row.subject_id: row.id for row in found}
    waits = sorted(
        arrivals[str(event_of[t])] - when
        for t, when in answered.items()
        if str(event_of.get(t)) in arrivals
    )
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else float("nan")
    return statistics.median(waits) * 1000, p99 * 1000, len(waits) / events


def _delivered(runtime: Runtime) -> int:
    with runtime.transaction(write=False) as (session, _):
        return int(
            session.scalar(
                select(text("count(*)"))
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.state == "delivered")
            )
            or 0
        )


def _last_id(runtime: Runtime) -> int:
    with runtime.transaction(write=False) as (session, _):
        return EventLog(session).last_id()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events a second (latency)")
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-bench-webhooks-"))
    url = options.database_url or f"sqlite+pysqlite:///{data_dir / 'bench.sqlite3'}"
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
    env = {
        **os.environ,
        "LEDGERDESK_DATABASE_URL": url,
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "LEDGERDESK_RATE_LIMIT": "1000000",
    }
    runtime = Runtime.build(Settings.from_env(env))
    upgrade(runtime.engine)
    with runtime.work(Actor.SYSTEM, Origin("cli")) as work:
        customer = AccountService(work).create_user(name="Bench", email=None, staff=False).id
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{backend}; {options.events} events")
    for servers in (1, 2):
        for ordered in (False, True):
            rate = backlog(runtime, env, customer, servers, options.events, ordered)
            kind = "ordered" if ordered else "unordered"
            print(f"  {servers} server(s), backlog, {kind} endpoint: {rate:,.0f} events/s")
        median, p99, share = latency(
            runtime, env, customer, servers, max(options.events // 5, 100), options.rate
        )
        print(
            f"  {servers} server(s), {options.rate:g} events/s committed: commit to delivery "
            f"median {median:.0f} ms, p99 {p99:.0f} ms ({share:.0%} arrived)"
        )
    runtime.engine.dispose()


if __name__ == "__main__":
    main()
