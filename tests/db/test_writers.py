"""SQLite writers of one process queue in the process, not in SQLite's busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path

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
