"""The event log: committed with its change or not at all, read in order, and never
skipping an event whose id was drawn before another's but committed after it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.models import ApiKey
from ledgerdesk.events.log import EventLog
from ledgerdesk.events.work import Work
from ledgerdesk.runtime import Runtime
from tests.events.test_write_paths import events_after, last_id
from tests.factories import make_customer, make_ticket, make_user, recorded_events, system_work
from tests.servers import LEDGERDESK, free_port, start, stop
from tests.support import Caller

pytestmark = pytest.mark.anyio


def test_an_event_is_rolled_back_with_its_write(runtime: Runtime) -> None:
    before = last_id(runtime)

    def fail_after_the_change() -> None:
        with system_work(runtime) as work:
            AccountService(work).create_user(name="Gone", email=None, staff=False)
            assert work.recorded == ["customer.created"]
            raise RuntimeError("the unit of work fails after the change")

    with pytest.raises(RuntimeError):
        fail_after_the_change()
    assert events_after(runtime, before) == []
    make_user(runtime, name="Kept")
    assert [e.payload["name"] for e in events_after(runtime, before)] == ["Kept"]


def test_a_transaction_has_one_unit_of_work(runtime: Runtime) -> None:
    with system_work(runtime) as work, pytest.raises(RuntimeError, match="already has"):
        Work(work.session, work.actor, work.origin, work.now, work.today)


def test_payloads_hold_no_secret(runtime: Runtime, client: httpx.AsyncClient) -> None:
    caller = make_customer(runtime)
    stored = json.dumps([e.as_json() for e in recorded_events(runtime)])
    assert caller.api_key not in stored
    with runtime.transaction(write=False) as (session, _):
        key_hash = session.query(ApiKey.key_hash).scalar()
    assert key_hash not in stored


def test_a_reader_never_skips_an_event_committed_after_a_later_one(runtime: Runtime) -> None:
    """Transaction A draws an event id and stays open while B writes. A reader that
    reads meanwhile, then reads on after the last id it saw, gets both: B's event is
    never committed (hence never seen) before A's, whose id is smaller."""
    before = last_id(runtime)
    drawn = threading.Event()
    release = threading.Event()

    def first() -> None:
        with system_work(runtime) as work:
            AccountService(work).create_user(name="A", email=None, staff=False)
            work.flush()  # the event's row and id now exist, uncommitted
            drawn.set()
            release.wait(10)

    def second() -> None:
        drawn.wait(10)
        make_user(runtime, name="B")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    drawn.wait(10)
    time.sleep(0.5)  # B has had time to write (it must wait for A)
    seen = events_after(runtime, before)
    cursor = seen[-1].id if seen else before
    release.set()
    for thread in threads:
        thread.join(10)
    seen += events_after(runtime, cursor)
    assert [e.payload["name"] for e in seen] == ["A", "B"]
    assert seen[0].id < seen[1].id


def test_history_of_a_ticket_and_of_a_customer(runtime: Runtime) -> None:
    caller = make_customer(runtime)
    ticket_id = make_ticket(runtime, caller.user_id)
    make_ticket(runtime, caller.user_id)
    with runtime.transaction(write=False) as (session, _):
        log = EventLog(session)
        assert [e.type for e in log.history(subject="ticket", subject_id=ticket_id)] == [
            "ticket.created"
        ]
        assert [e.type for e in log.of_customer(caller.user_id)] == [
            "ticket.created",
            "ticket.created",
            "api_key.created",
            "customer.created",
        ]


# -- admin events -----------------------------------------------------------------------


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Any:
    def invoke(*args: str) -> Any:
        return CliRunner().invoke(
            cli,
            ["--database-url", database_url, "--data-dir", str(tmp_path), "admin", "events", *args],
        )

    return invoke


def lines(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_admin_events_filters_and_pages(runtime: Runtime, run: Any) -> None:
    ann = make_customer(runtime, "Ann")
    bob = make_customer(runtime, "Bob")
    make_ticket(runtime, ann.user_id)
    everything = lines(run("--json"))
    assert [e["type"] for e in everything] == [
        "customer.created",
        "api_key.created",
        "customer.created",
        "api_key.created",
        "ticket.created",
    ]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids)
    assert everything[4]["customerId"] == ann.user_id
    assert everything[4]["actor"] == {"kind": "system", "userId": None, "keyId": None}
    after = lines(run("--after", str(ids[1]), "--limit", "2", "--json"))
    assert [e["id"] for e in after] == ids[2:4]
    tickets = lines(run("--type", "ticket.*", "--json"))
    assert [e["type"] for e in tickets] == ["ticket.created"]
    keys = lines(run("--type", "api_key.created", "--customer", str(bob.user_id), "--json"))
    assert [e["customerId"] for e in keys] == [bob.user_id]
    prose = run("--type", "ticket.created")
    assert "ticket.created" in prose.output
    assert "via system" in prose.output
    unknown = run("--type", "ticket.exploded")
    assert unknown.exit_code == 2
    assert "no event type" in unknown.output
    assert run("--after", "999999").output.strip() == "No events."


def test_follow_prints_events_as_they_are_committed(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    first = last_id(runtime)
    follower = subprocess.Popen(
        [*LEDGERDESK, "admin", "events", "--follow", "--json", "--after", str(first)],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "LEDGERDESK_DATABASE_URL": database_url,
            "LEDGERDESK_DATA_DIR": str(tmp_path),
        },
    )
    try:
        make_user(runtime, name="Fay")
        assert follower.stdout is not None
        line = follower.stdout.readline()  # blocks until the follower prints it
        assert json.loads(line)["data"]["name"] == "Fay"
        make_user(runtime, name="Gus")
        assert json.loads(follower.stdout.readline())["data"]["name"] == "Gus"
    finally:
        _end(follower)


@pytest.mark.slow
def test_several_servers_writing_at_once_lose_and_repeat_no_event(
    database_url: str, tmp_path: Path
) -> None:
    """Two server processes take createTicket from eight clients at once while a
    follower reads the log: every answered ticket has exactly one event, ids grow, and
    the follower saw exactly what the log holds, in order."""
    data_dir = tmp_path / "data"
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=data_dir))
    caller = make_customer(runtime)
    start_id = last_id(runtime)
    runtime.close()
    env = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "LEDGERDESK_RATE_LIMIT": "1000000",
    }
    follower = subprocess.Popen(
        [*LEDGERDESK, "admin", "events", "--follow", "--json", "--after", str(start_id)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    ports = [free_port(), free_port()]
    servers = [start(["serve", "--port", str(port)], port, env) for port in ports]
    answered: list[int] = []
    refused: list[object] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        port = ports[n % 2]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for i in range(25):
                body = Caller(caller.user_id, caller.api_key).body(
                    "createTicket", title=f"c{n}-{i}", content="x"
                )
                for _ in range(10):  # as a client does: a 503 (busy) is retried
                    try:
                        response = http.post("/api/rest/v2/administration", json=body)
                    except httpx.HTTPError as exc:
                        data = {"status": "Error", "exception": repr(exc)}
                        break
                    data = response.json()
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("retry-after", "1")))
                with lock:
                    if data["status"] != "Success":
                        refused.append(data)
                        return
                    answered.append(data["data"]["ticketId"])

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for server in servers:
            stop(server)
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=data_dir))
    try:
        logged = events_after(runtime, start_id)
    finally:
        runtime.close()
    assert refused == []
    assert len(answered) == 200
    assert sorted(e.subject_id or 0 for e in logged) == sorted(answered)
    ids = [e.id for e in logged]
    assert ids == sorted(set(ids))
    seen: list[int] = []
    assert follower.stdout is not None
    try:
        while len(seen) < len(ids):
            seen.append(json.loads(follower.stdout.readline())["id"])
    finally:
        _end(follower)
    assert seen == ids


def _end(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def test_a_savepoint_inside_a_unit_of_work_loses_none_of_its_events(runtime: Runtime) -> None:
    """A savepoint that commits or rolls back (a row made at the same moment by another
    transaction) ends nothing: the events recorded after it commit with the work."""
    from sqlalchemy.exc import IntegrityError

    from ledgerdesk.db.models import MailKey
    from ledgerdesk.events.types import EventType
    from ledgerdesk.events.work import Actor, Origin

    with runtime.transaction(write=True) as (session, _):
        session.query(MailKey).delete()
        session.add(MailKey(id=1, key="00" * 32))
    with runtime.work(Actor.SYSTEM, Origin("system")) as work:
        work.record(EventType.SELLER_UPDATED, subject_id=1, customer_id=None, payload={"n": 1})
        with work.session.begin_nested():
            work.session.get(MailKey, 1)
        try:
            with work.session.begin_nested():
                work.session.add(MailKey(id=1, key="11" * 32))
        except IntegrityError:
            pass
        work.record(EventType.SELLER_UPDATED, subject_id=1, customer_id=None, payload={"n": 2})
    with runtime.transaction(write=False) as (session, _):
        recorded = EventLog(session).newest(user_id=None, since=None, limit=10)
    assert [e.payload.get("n") for e in recorded if e.type == "seller.updated"] == [2, 1]
