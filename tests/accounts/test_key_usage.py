"""Key usage flushed from several processes at once: added up, never backwards, and
never a deadlock between processes that used the same keys."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from sqlalchemy import select

from ledgerdesk.accounts.usage import KeyUsageRecorder
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import ApiKey
from ledgerdesk.runtime import Runtime
from tests.factories import make_key, make_user

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
