"""The SQLite read cache: served from memory only while the database is unchanged."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.config import Settings
from ledgerdesk.db import read_cache
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Invoice
from ledgerdesk.db.read_cache import ReadCache
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_invoice, make_key, make_ticket, make_user
from tests.support import assert_error, assert_success, call

pytestmark = pytest.mark.anyio


class FakeDatabase:
    def __init__(self) -> None:
        self.version = 1
        self.asked = 0

    def data_version(self) -> int:
        self.asked += 1
        return self.version


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_cache(db: FakeDatabase, clock: FakeTime) -> ReadCache:
    cache = ReadCache(db.data_version, check_interval=0.01, monotonic=clock)
    cache.refresh()
    return cache


def test_a_changed_database_empties_the_cache() -> None:
    db, clock = FakeDatabase(), FakeTime()
    cache = make_cache(db, clock)
    cache.keep_answer("k", b"answer")
    clock.now += 0.02
    cache.refresh()
    assert cache.answer("k") == b"answer"
    db.version = 2
    clock.now += 0.02
    cache.refresh()
    assert cache.answer("k") is None


def test_the_database_is_asked_at_most_once_per_interval() -> None:
    db, clock = FakeDatabase(), FakeTime()
    cache = make_cache(db, clock)
    for _ in range(100):
        cache.refresh()
    assert db.asked == 1
    clock.now += 0.011
    cache.refresh()
    assert db.asked == 2


def test_a_commit_in_this_process_makes_the_next_refresh_ask(runtime: Runtime) -> None:
    db, clock = FakeDatabase(), FakeTime()
    cache = make_cache(db, clock)
    make_user(runtime)  # commits through an ORM session
    cache.refresh()
    assert db.asked == 2


def test_answers_are_bounded_in_number_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_cache, "MAX_ANSWERS", 3)
    cache = make_cache(FakeDatabase(), FakeTime())
    for n in range(5):
        cache.keep_answer(n, b"x")
    assert list(cache.answers) == [2, 3, 4]
    cache.keep_answer("huge", b"x" * (read_cache.MAX_ANSWER_BYTES + 1))
    assert cache.answer("huge") is None


async def test_repeated_reads_are_served_from_memory(
    app: LedgerdeskApp, client: httpx.AsyncClient, runtime: Runtime, backend: str
) -> None:
    caller = make_customer(runtime)
    first = await call(client, caller, "getInvoiceIds")
    second = await call(client, caller, "getInvoiceIds")
    assert first.content == second.content
    # Only the event loop's SQLite reader keeps a cache; PostgreSQL reads always query.
    cache = getattr(app.api.execution, "cache", None)
    assert (cache is not None) == (backend == "sqlite")
    assert cache is None or cache.hits == 1


async def test_a_write_through_this_server_is_seen_by_the_next_read(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    assert assert_success(await call(client, caller, "getTicketOverview")) == {"tickets": []}
    assert_success(await call(client, caller, "createTicket", title="T", content="C"))
    listed = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert len(listed) == 1


async def test_a_write_on_the_readers_former_connection_is_seen(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A failed read gives the reader's connection back to the pool, where a writer may
    take it; SQLite's data_version never reports a connection's own commits, so the
    cache must not compare versions across connections."""
    caller = make_customer(runtime)
    assert assert_success(await call(client, caller, "getTicketOverview")) == {"tickets": []}
    assert_error(await call(client, caller, "getTicket", ticketId=424242), 3001, 404)
    for _ in range(3):  # whichever pooled connection the writer gets
        make_ticket(runtime, caller.user_id)
        listed = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
        assert_error(await call(client, caller, "getTicket", ticketId=424242), 3001, 404)
    assert len(listed) == 3


async def test_a_change_by_another_connection_is_seen(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    today = runtime.day_of(runtime.clock.timestamp())
    invoice = make_invoice(runtime, caller.user_id, created_on=today)
    assert assert_success(await call(client, caller, "getInvoiceIds")) == {
        "invoiceIds": [invoice.id]
    }
    # A plain connection, not an ORM session: as another process would write.
    with runtime.engine.connect() as connection:
        connection.execute(Invoice.__table__.delete())
        connection.commit()
    time.sleep(read_cache.CHECK_INTERVAL * 5)
    assert assert_success(await call(client, caller, "getInvoiceIds")) == {"invoiceIds": []}


async def test_a_key_revoked_by_another_process_stops_working(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    user_id = make_user(runtime)
    key_id, caller = make_key(runtime, user_id)
    assert_success(await call(client, caller, "getInvoiceIds"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledgerdesk",
            "--database-url",
            settings.database_url,
            "admin",
            "key",
            "revoke",
            str(key_id),
        ],
        check=True,
        capture_output=True,
    )
    time.sleep(read_cache.CHECK_INTERVAL * 5)
    assert_error(await call(client, caller, "getInvoiceIds"), 2001, 401)


def test_unit_of_work_commits_count_as_local(runtime: Runtime) -> None:
    before = read_cache._last_local_commit
    with unit_of_work(runtime.sessions, write=True):
        pass
    assert read_cache._last_local_commit != before
