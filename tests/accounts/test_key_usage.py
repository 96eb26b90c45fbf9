"""Key usage flushed from several processes at once: added up, never backwards, and
never a deadlock between processes that used the same keys."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import select

from ledgerdesk.accounts.usage import KeyUsageRecorder
from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import ApiKey
from ledgerdesk.execution import SqliteExecution
from ledgerdesk.runtime import Runtime
from tests.conftest import CLIENT_ADDRESS, make_client
from tests.factories import make_customer, make_key, make_user
from tests.support import FrozenClock, call

pytestmark = pytest.mark.anyio

ROUNDS = 15
KEYS = 60


def _flush_in_a_process(
    database_url: str, data_dir: str, key_ids: list[int], barrier: Barrier
) -> None:
    """Record one use of every key, in the order given, and flush; ROUNDS times."""
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=Path(data_dir)))
    try:
        for round_number in range(ROUNDS):
            recorder = KeyUsageRecorder()
            for key_id in key_ids:
                recorder.record(key_id, 1_000 + round_number)
            barrier.wait(timeout=60)  # both processes flush at the same moment
            recorder.flush(runtime.sessions)
    finally:
        runtime.engine.dispose()


def test_two_processes_flushing_the_same_keys_never_deadlock(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    user_id = make_user(runtime)
    key_ids = [make_key(runtime, user_id)[0] for _ in range(KEYS)]
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    processes = [
        spawn.Process(
            target=_flush_in_a_process,
            args=(database_url, str(tmp_path / str(n)), order, barrier),
        )
        # Opposite orders: without a stable order of their own, the two transactions
        # would lock the rows crosswise.
        for n, order in enumerate((key_ids, key_ids[::-1]))
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    with unit_of_work(runtime.sessions, write=False) as session:
        rows = session.execute(select(ApiKey.use_count, ApiKey.last_used_at)).all()
    assert {tuple(row) for row in rows} == {(2 * ROUNDS, 1_000 + ROUNDS - 1)}


def test_a_last_used_time_never_moves_back(runtime: Runtime) -> None:
    key_id, _ = make_key(runtime, make_user(runtime))
    later, earlier = KeyUsageRecorder(), KeyUsageRecorder()
    later.record(key_id, 2_000)
    earlier.record(key_id, 1_000)
    later.flush(runtime.sessions)
    earlier.flush(runtime.sessions)  # a slower process, flushing older uses afterwards
    with unit_of_work(runtime.sessions, write=False) as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        assert (key.use_count, key.last_used_at) == (2, 2_000)


@pytest.fixture
def sqlite_app(tmp_path: Path, clock: FrozenClock) -> Iterator[LedgerdeskApp]:
    """SQLite only: PostgreSQL keeps no read cache and flushes through the pool."""
    data = tmp_path / "data"
    settings = Settings(database_url=f"sqlite+pysqlite:///{data}/ledgerdesk.sqlite3", data_dir=data)
    app = create_app(settings, clock=clock)
    upgrade(app.state.runtime.engine)
    yield app
    app.state.runtime.close()


async def test_flushing_on_the_event_loop_keeps_the_read_cache(
    sqlite_app: LedgerdeskApp,
) -> None:
    app, runtime = sqlite_app, sqlite_app.state.runtime
    client = make_client(app, CLIENT_ADDRESS)
    caller = make_customer(runtime)
    first = await call(client, caller, "getTicketOverview")
    await call(client, caller, "getTicketOverview")
    hits = app.api.execution.cache.hits
    assert app.api.execution.flush_key_usage_here() == 1
    again = await call(client, caller, "getTicketOverview")
    assert again.content == first.content
    assert app.api.execution.cache.hits == hits + 1  # still answered from memory
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.scalars(select(ApiKey.use_count)).one() == 2
    runtime.flush_key_usage()  # the third use, through the pool as the CLI does
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.scalars(select(ApiKey.use_count)).one() == 3


async def test_a_flush_on_the_event_loop_never_waits_for_a_writer(
    sqlite_app: LedgerdeskApp,
) -> None:
    app, runtime = sqlite_app, sqlite_app.state.runtime
    client = make_client(app, CLIENT_ADDRESS)
    caller = make_customer(runtime)
    await call(client, caller, "getInvoiceIds")
    writer = runtime.engine.raw_connection()
    try:
        writer.driver_connection.execute("BEGIN IMMEDIATE")  # a writer holds the lock
        began = time.monotonic()
        assert app.api.execution.flush_key_usage_here() == 0
        assert time.monotonic() - began < 1
        writer.driver_connection.execute("ROLLBACK")
    finally:
        writer.close()
    assert app.api.execution.flush_key_usage_here() == 1  # kept, and written on the next try
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.scalars(select(ApiKey.use_count)).one() == 1


async def test_many_keys_are_flushed_off_the_event_loop(sqlite_app: LedgerdeskApp) -> None:
    app, runtime = sqlite_app, sqlite_app.state.runtime
    execution = app.api.execution
    assert isinstance(execution, SqliteExecution)
    client = make_client(app, CLIENT_ADDRESS)
    callers = [make_customer(runtime) for _ in range(3)]
    for caller in callers:
        await call(client, caller, "getInvoiceIds")
    execution.loop_flush_max_keys = 2
    hops = execution.thread_hops
    assert await execution.flush_key_usage() == 3
    assert execution.thread_hops == hops + 1  # written by a worker thread
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.scalars(select(ApiKey.use_count)).all() == [1, 1, 1]
    # A few keys are written here, on the loop's own connection.
    await call(client, callers[0], "getInvoiceIds")
    assert await execution.flush_key_usage() == 1
    assert execution.thread_hops == hops + 1


async def test_the_server_flushes_key_usage_of_every_key(
    app: LedgerdeskApp, runtime: Runtime, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes it through asyncpg on the event loop: no worker thread."""
    client = make_client(app, CLIENT_ADDRESS)
    callers = [make_customer(runtime) for _ in range(3)]
    for caller in [*callers, callers[0]]:
        await call(client, caller, "getInvoiceIds")
    hops = app.api.execution.thread_hops
    assert await app.api.execution.flush_key_usage() == 3
    if backend == "postgresql":
        assert app.api.execution.thread_hops == hops
    assert await app.api.execution.flush_key_usage() == 0
    with unit_of_work(runtime.sessions, write=False) as session:
        counts = session.scalars(select(ApiKey.use_count).order_by(ApiKey.id)).all()
    assert counts == [2, 1, 1]
