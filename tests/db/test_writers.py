"""SQLite writers of one process queue in the process, not in SQLite's busy handler."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import User
from ledgerdesk.runtime import Runtime


def test_a_second_writer_waits_for_its_turn_without_a_connection(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runtime = Runtime.build(
        Settings(database_url=f"sqlite+pysqlite:///{data}/ledgerdesk.sqlite3", data_dir=data)
    )
    upgrade(runtime.engine)
    done: list[str] = []

    def second() -> None:
        with unit_of_work(runtime.sessions, write=True) as session:
            session.add(User(name="second", email=None, is_staff=False, created_at=2))
        done.append("second")

    try:
        with unit_of_work(runtime.sessions, write=True) as session:
            session.add(User(name="first", email=None, is_staff=False, created_at=1))
            session.flush()
            waiting = threading.Thread(target=second)
            waiting.start()
            time.sleep(0.3)  # time for the second writer to get as far as it can
            # It waits before taking a connection: not inside BEGIN IMMEDIATE, where
            # SQLite's busy handler would make it sleep and poll.
            assert runtime.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
            assert not done
        waiting.join(timeout=10)
        assert done == ["second"]
        with unit_of_work(runtime.sessions, write=False) as session:
            assert session.scalars(select(User.name).order_by(User.id)).all() == [
                "first",
                "second",
            ]
    finally:
        runtime.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (what an admin's sudo runs as)")
def test_the_writers_lock_made_by_root_stays_the_database_owners(tmp_path: Path) -> None:
    """An admin command run as root beside a server of another user: the lock file it
    makes is the database owner's, as SQLite's -wal and -shm are, so the server can
    still write (a root-only lock file would stop every write of the server)."""
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite+pysqlite:///{data}/ledgerdesk.sqlite3"
    runtime = Runtime.build(Settings(database_url=url, data_dir=data))
    try:
        upgrade(runtime.engine)
        database = data / "ledgerdesk.sqlite3"
        os.chown(database, 65534, 65534)  # the server's user
        database.chmod(0o660)
        (data / "ledgerdesk.sqlite3.writer").unlink(missing_ok=True)
        with unit_of_work(runtime.sessions, write=True) as session:
            session.add(User(name="root's", email=None, is_staff=False, created_at=1))
        lock = (data / "ledgerdesk.sqlite3.writer").stat()
        assert (lock.st_uid, lock.st_gid, lock.st_mode & 0o777) == (65534, 65534, 0o660)
    finally:
        runtime.engine.dispose()
