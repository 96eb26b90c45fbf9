"""One engine and connection pool per process, and the unit of work.

The request owns the transaction: ``unit_of_work`` commits once at the end or rolls
back on any error. Services and repositories never commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from ledgerdesk.config import Settings

# Execution option that marks a transaction as one that will write.
_WRITE = "ledgerdesk_write"


def build_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        return _sqlite_engine(settings)
    # No overflow: the API's reads have a pool of their own (db.loop_reads), so a process
    # holds at most twice LEDGERDESK_DB_POOL_SIZE connections; a burst of writes or
    # console pages waits for a connection instead of opening more.
    # Timeouts: a statement runs at most LEDGERDESK_DB_TIMEOUT seconds (on the server), a
    # connection opens within LEDGERDESK_DB_CONNECT_TIMEOUT, and a request waits no
    # longer than LEDGERDESK_DB_TIMEOUT for a pooled connection. Migrations lift the
    # statement timeout for their own transaction (db.migrate).
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_recycle=1800,
        pool_timeout=settings.db_timeout,
        connect_args={
            "connect_timeout": max(1, round(settings.db_connect_timeout)),
            "options": f"-c statement_timeout={round(settings.db_timeout * 1000)}",
        },
    )


def _sqlite_engine(settings: Settings) -> Engine:
    path = make_url(settings.database_url).database
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # Connections move between worker threads; each is used by one thread at a time.
        pool_timeout=settings.db_timeout,
        connect_args={"check_same_thread": False, "timeout": settings.db_timeout},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={round(settings.db_timeout * 1000)}")
        cursor.close()

    _SQLITE_WRITERS[engine] = WriterQueue(Path(path) if path and path != ":memory:" else None)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for the write
        # lock (SQLite answers SQLITE_BUSY at once), so writers take it up front.
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


class WriterQueue:
    """SQLite's one writer at a time, taken in turn instead of by polling.

    SQLite's busy handler makes a writer that finds the lock taken sleep and try again
    (up to 100 ms a time): under concurrent writes the p99 went over a second. Writers
    queue here before ``BEGIN IMMEDIATE`` instead, and the next one starts the moment
    the previous one is done: threads of this process on a lock, processes (other
    workers, the admin CLI) on an ``flock`` of a file beside the database, which the
    kernel hands over at once and releases if its holder dies.
    """

    def __init__(self, database: Path | None) -> None:
        self._threads = threading.Lock()
        self._file = None if database is None else database.with_name(database.name + ".writer")

    def acquire(self) -> None:
        if not self._threads.acquire(timeout=WRITER_WAIT_SECONDS):
            raise TimeoutError(f"no turn to write within {WRITER_WAIT_SECONDS:.0f} s")
        if self._file is None:
            return
        try:
            self._descriptor = _open_beside(self._file)
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        except BaseException:
            self._close()
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            self._close()  # closing the descriptor releases the flock
        finally:
            self._threads.release()

    def _close(self) -> None:
        descriptor, self._descriptor = self._descriptor, -1
        if descriptor >= 0:
            os.close(descriptor)

    _descriptor = -1


def _open_beside(lock: Path) -> int:
    """The lock file; made (once) as SQLite makes its ``-wal`` and ``-shm``: with the
    database's permissions and, made by root (an admin command run with sudo), given the
    database's owner, so that the server's own user can still take the lock."""
    try:
        return os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        pass
    database = lock.with_name(lock.name.removesuffix(".writer"))
    try:
        found = database.stat()
    except FileNotFoundError:
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):
        if os.geteuid() == 0:
            os.fchown(descriptor, found.st_uid, found.st_gid)
        os.fchmod(descriptor, found.st_mode & 0o666)
    return descriptor


_SQLITE_WRITERS: WeakKeyDictionary[Engine, WriterQueue] = WeakKeyDictionary()
WRITER_WAIT_SECONDS = 30.0


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, write: bool) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    writers = _SQLITE_WRITERS.get(factory.kw["bind"]) if write else None
    if writers is not None:
        writers.acquire()
    try:
        with factory() as session, session.begin():
            if write:
                session.connection(execution_options={_WRITE: True})
            yield session
    finally:
        if writers is not None:
            writers.release()


def pool_use(engine: Engine) -> dict[str, tuple[int, int]]:
    """The connections of ``engine``'s pool now, in use and idle (for the metrics)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return {}
    return {"threads": (pool.checkedout(), pool.checkedin())}
