"""The production shape, started from ``deploy/``: three servers, each on a machine of
its own (a network namespace), behind HAProxy, on one PostgreSQL and one Redis, with
attachments in the database. Under mixed reads and writes, with webhook deliveries in
flight, one server is SIGKILLed and later started again:

- clients that retry with their Idempotency-Key lose nothing and duplicate nothing;
- the load balancer stops sending to the dead one within its check interval, and takes
  it back once it is ready;
- rate limits stay shared (Redis): ten wrong keys from one address, whichever servers
  they reach, and the eleventh is refused;
- every webhook event is delivered;
- the survivors' /metrics show the traffic they served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from ledgerdesk.config import Settings
from ledgerdesk.db.models import DomainEvent, Ticket
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.service import WebhookService
from tests.conftest import BACKENDS, fresh_postgres_database
from tests.factories import make_customer, system_work
from tests.machines import DEPLOY, Machine, environment_file, exec_start, haproxy, machines, missing
from tests.servers import free_port
from tests.support import Caller
from tests.test_metrics import parse
from tests.webhooks.receiver import receiver_thread

pytestmark = pytest.mark.slow

PG_PORT, REDIS_PORT, APP_PORT = 15432, 16379, 8080
REDIS_DB = 9
# HAProxy checks every second and takes a server out after two failures.
CHECK_INTERVAL, FALL = 1.0, 2


@pytest.fixture
def shape(tmp_path: Path, postgres_admin_url: str) -> Iterator[tuple[list[Machine], str]]:
    why = missing()
    if why is not None or "postgresql" not in BACKENDS:
        if os.environ.get("LEDGERDESK_TEST_SCALE_OUT") == "required":
            pytest.fail(f"the scale-out test cannot run here: {why or 'no PostgreSQL'}")
        pytest.skip(why or "PostgreSQL is not among LEDGERDESK_TEST_BACKENDS")
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_admin_url)
    with fresh_postgres_database(postgres_admin_url) as url:
        forward = {
            PG_PORT: (admin.host or "127.0.0.1", admin.port or 5432),
            REDIS_PORT: ("127.0.0.1", 6379),
        }
        with machines(3, forward) as made:
            yield made, url


def server_env(machine: Machine, database_url: str, data: Path) -> dict[str, str]:
    """deploy/ledgerdesk.env with this test's database, Redis and addresses."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(host=machine.gateway, port=PG_PORT)
    return {
        **os.environ,
        **environment_file(),
        "LEDGERDESK_DATABASE_URL": url.render_as_string(hide_password=False),
        "LEDGERDESK_REDIS_URL": f"redis://{machine.gateway}:{REDIS_PORT}/{REDIS_DB}",
        "LEDGERDESK_DATA_DIR": str(data / machine.name),
        "LEDGERDESK_TRUSTED_PROXIES": "10.77.0.0/16",
        "LEDGERDESK_METRICS_ALLOW": "10.77.0.0/16",
        "LEDGERDESK_WEBHOOK_ALLOW_NETWORKS": "10.77.0.0/16",
        "LEDGERDESK_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.5,1,1,1,1,1,1,1,1,1",
        "LEDGERDESK_WEBHOOK_TIMEOUT": "2",
        "LEDGERDESK_RATE_LIMIT": "100000",
        "LEDGERDESK_DB_POOL_SIZE": "4",
        "LEDGERDESK_WORKERS": "1",
        "LEDGERDESK_LOG_FORMAT": "text",
        "LEDGERDESK_ACCESS_LOG": "false",
    }


def start_server(machine: Machine, database_url: str, data: Path) -> subprocess.Popen[bytes]:
    env = server_env(machine, database_url, data)
    command = exec_start(DEPLOY / "systemd" / "ledgerdesk.service", env)
    process = machine.popen(command, env, data / f"{machine.name}.log")
    from tests.machines import wait_healthy

    wait_healthy(f"http://{machine.address}:{APP_PORT}", process)
    return process


EXPECTED = [2001] * 10 + [4002] * 5


def guess(lb_port: int, caller: Caller, address: str) -> list[int]:
    """Fifteen wrong keys from ``address`` through the balancer: their error codes."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{lb_port}") as guesser:
        return [
            guesser.post(
                "/api/rest/v2/administration",
                json=Caller(caller.user_id, "y" * 32).body("getTicketOverview"),
            ).json()["data"]["errorCode"]
            for _ in range(15)
        ]


def fail_open_lines(directory: Path) -> list[str]:
    return [
        line
        for log in directory.glob("*.log")
        for line in log.read_text(errors="replace").splitlines()
        if "rate-limit store" in line
    ]


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds it took; fails after ``seconds``."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, f"timed out: {what}"
        time.sleep(0.05)
    return time.monotonic() - began


class Load:
    """Writers creating tickets with an Idempotency-Key each, retried with the same key
    until answered; readers reading the overview. All through the load balancer."""

    def __init__(self, base: str, caller: Caller) -> None:
        self.base = base
        self.caller = caller
        self.stop = threading.Event()
        self.written: dict[str, int] = {}  # title -> ticket id
        self.retries = 0
        self.reads = 0
        self.read_failures = 0
        self.given_up: list[str] = []
        self.lock = threading.Lock()

    def writer(self, name: str) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                title = f"{name}-{n}"
                key = str(uuid.uuid4())
                body = self.caller.body("createTicket", title=title, content="Load.")
                for attempt in range(40):
                    try:
                        answer = http.post(
                            "/api/rest/v2/administration",
                            json=body,
                            headers={"Idempotency-Key": key},
                        )
                        found = answer.json()
                        if found["status"] == "Success":
                            with self.lock:
                                assert title not in self.written
                                self.written[title] = found["data"]["ticketId"]
                            break
                    except (httpx.TransportError, ValueError):
                        pass
                    with self.lock:
                        self.retries += 1
                    time.sleep(min(0.05 * (attempt + 1), 0.5))
                else:
                    self.given_up.append(title)

    def reader(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    answer = http.post(
                        "/api/rest/v2/administration",
                        json=self.caller.body("getTicketOverview"),
                    )
                    ok = answer.json()["status"] == "Success"
                except (httpx.TransportError, ValueError):
                    ok = False
                with self.lock:
                    self.reads += 1
                    self.read_failures += not ok
                time.sleep(0.01)


def test_three_servers_behind_haproxy_survive_losing_one(
    shape: tuple[list[Machine], str], tmp_path: Path
) -> None:
    made, database_url = shape
    redis.Redis(port=6379, db=REDIS_DB).flushdb()
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "admin",
        attachment_store="database",
        webhook_allow_networks="10.77.0.0/16",
    )
    runtime = Runtime.build(settings)
    try:
        caller = make_customer(runtime)
        with receiver_thread(host="0.0.0.0") as receiver:  # noqa: S104 (the machines' side)
            receiver.script = lambda _, __: (200, "", b"")
            with system_work(runtime) as work:
                endpoint = WebhookService.of(work, settings).create(
                    url=f"http://{made[0].gateway}:{receiver.port}/hooks", event_types=["ticket.*"]
                )
            receiver.secrets.append(endpoint.secret)
            servers = [start_server(m, database_url, tmp_path) for m in made]
            addresses = [f"{m.address}:{APP_PORT}" for m in made]
            lb_port = free_port()
            with haproxy(addresses, lb_port, tmp_path) as balancer:
                wait_until(lambda: set(balancer.states().values()) == {"UP"}, 15, "all UP")
                load = Load(f"http://127.0.0.1:{lb_port}", caller)
                threads = [threading.Thread(target=load.writer, args=(f"w{n}",)) for n in range(4)]
                threads += [threading.Thread(target=load.reader) for _ in range(2)]
                for thread in threads:
                    thread.start()
                try:
                    time.sleep(4)
                    # One machine is lost in the middle of the work.
                    servers[1].send_signal(signal.SIGKILL)
                    servers[1].wait()
                    noticed = wait_until(
                        lambda: balancer.states()["app2"] == "DOWN", 10, "app2 taken out"
                    )
                    time.sleep(4)
                    served_while_down = len(load.written)
                    servers[1] = start_server(made[1], database_url, tmp_path)
                    wait_until(lambda: balancer.states()["app2"] == "UP", 15, "app2 taken back")
                    time.sleep(4)
                finally:
                    load.stop.set()
                    for thread in threads:
                        thread.join(30)
                # Shared rate limits: wrong keys from one address, spread over the
                # servers by the balancer. (A server whose Redis call takes over 0.25 s
                # counts in its own memory for 5 s, logged: a loaded test machine can
                # cause that, so a new address tries again; sharing broken fails all.)
                attempts = [guess(lb_port, caller, "127.0.0.2")]
                while attempts[-1] != EXPECTED and len(attempts) < 3:
                    time.sleep(5)
                    attempts.append(guess(lb_port, caller, f"127.0.0.{len(attempts) + 2}"))
                assert balancer.process.poll() is None
            with runtime.transaction(write=False) as (session, _):
                titles = dict(session.execute(select(Ticket.title, Ticket.id)).all())
                per_title = session.execute(
                    select(Ticket.title, func.count())
                    .group_by(Ticket.title)
                    .having(func.count() > 1)
                ).all()
                created = {
                    str(e)
                    for e in session.scalars(
                        select(DomainEvent.id).where(DomainEvent.type == "ticket.created")
                    )
                }
            wait_until(
                lambda: {d.webhook_id for d in list(receiver.verified)} >= created,
                90,
                "every ticket.created event delivered",
            )
            metrics = [
                parse(httpx.get(f"http://{m.address}:{APP_PORT}/metrics", timeout=10).text)
                for m in (made[0], made[2])
            ]
            for process in servers:
                process.send_signal(signal.SIGTERM)
            for process in servers:
                process.wait(60)
    finally:
        runtime.engine.dispose()

    print(  # shown with -s: the figures of this run
        f"writes {len(load.written)}, retried {load.retries}, reads {load.reads} "
        f"({load.read_failures} failed), taken out after {noticed:.2f} s, "
        f"{len(created)} events delivered"
    )
    # Nothing lost, nothing twice: each write answered once, with the ticket that exists.
    assert not load.given_up
    assert len(load.written) >= 40
    assert per_title == []
    assert {title: titles.get(title) for title in load.written} == load.written
    assert load.retries > 0  # the kill was felt, and retried through
    assert served_while_down > 0
    # Taken out within its checks (two failures a second apart, plus one interval).
    assert noticed <= FALL * CHECK_INTERVAL + CHECK_INTERVAL + 0.5
    # Ten wrong keys counted together, wherever they went; then refused.
    assert EXPECTED in attempts, (attempts, fail_open_lines(tmp_path))
    assert not receiver.unverified
    for found in metrics:
        writes = sum(
            value
            for (name, labels), value in found.items()
            if name == "ledgerdesk_api_requests_total" and ("action", "createTicket") in labels
        )
        assert writes > 0
    assert load.reads > 0
