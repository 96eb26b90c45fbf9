"""Where work runs: one seam, chosen once per backend when the process starts.

Every door that touches the database from the event loop goes through an
``Execution``: the protocol endpoint for its reads and writes, the web pages for their
units of work, the server's periodic key-usage flush. It decides where each runs, so
that there is one scheduling story (in the spirit of httpx's transports: the same
calls, an implementation per backend).

- ``SqliteExecution`` runs reads on the event loop itself, on one pinned connection
  with the read cache (SQLite reads take microseconds and never wait for writers in
  WAL mode: a hop to a thread would cost more than the query), and writes in worker
  threads, which queue for SQLite's single writer (``db.engine.WriterQueue``).
- ``PostgresExecution`` runs reads on the event loop through asyncpg (the synchronous
  code in a greenlet: ``db.loop_reads``), and writes in worker threads on psycopg.

Work that does blocking file I/O (``offload``) and every page's unit of work run in
worker threads, at most as many as the pool has connections. A database that hangs
never hangs a request: past a statement's and a connection's time it is answered 503
(``fail_after``) and the thread is left to finish on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from anyio import CapacityLimiter, fail_after, to_thread
from sqlalchemy.orm import Session

from ledgerdesk.accounts.repository import RECORD_USES, key_use_rows
from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.db.engine import pool_use
from ledgerdesk.db.loop_reads import LoopReads
from ledgerdesk.db.prepared import Db, PinnedReader, read_transaction
from ledgerdesk.db.read_cache import ReadCache
from ledgerdesk.runtime import Runtime

T = TypeVar("T")

# Key usage of at most this many keys is written on the event loop (SQLite): a few
# milliseconds at most (see SqliteExecution.flush_key_usage).
LOOP_FLUSH_MAX_KEYS = 256

Read = Callable[[Db, ReadCache | None], T]
Write = Callable[[Session, BlobBatch], T]


class Execution:
    """Run a read, run a write, run a blocking unit of work, flush key usage, close."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        # How long a request waits for the database at all: a statement's time plus a
        # connection's; past it the database is hung (its own timeouts never fired).
        self.database_wait = settings.db_timeout + settings.db_connect_timeout + 1
        # No more threads at the database than the pool has connections: a thread
        # beyond that would wait for one, or force an overflow connection that is
        # opened and closed again for a single request.
        self.database_threads = CapacityLimiter(settings.db_pool_size)
        # Hops to a worker thread so far (tests and metrics: reads should take none).
        self.thread_hops = 0

    @staticmethod
    def of(runtime: Runtime) -> Execution:
        """The execution for the runtime's database."""
        if runtime.settings.is_sqlite:
            return SqliteExecution(runtime)
        return PostgresExecution(runtime)

    async def read(self, work: Read[T], *, offload: bool = False) -> T:
        """``work(db, cache)`` in a read transaction (``cache``: the read cache where the
        backend has one); ``offload``: it does blocking file I/O, so in a thread."""
        return await self.blocking(self._read_in_thread, work)

    def _read_in_thread(self, work: Read[T]) -> T:
        with read_transaction(self.runtime.engine) as db:
            return work(db, None)

    async def write(self, work: Write[T]) -> T:
        """``work(session, blobs)`` in a write transaction, in a worker thread."""
        return await self.blocking(self._write_in_thread, work)

    def _write_in_thread(self, work: Write[T]) -> T:
        with self.runtime.transaction(write=True) as (session, blobs):
            return work(session, blobs)

    async def blocking(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread that may hold a database connection (a
        page's unit of work, a read that does file I/O)."""
        self.thread_hops += 1
        with fail_after(self.database_wait):
            return await to_thread.run_sync(
                work, *args, limiter=self.database_threads, abandon_on_cancel=True
            )

    def pools(self) -> dict[str, tuple[int, int]]:
        """Connections of this process's pools now, in use and idle, by pool: the one
        threads use (SQLAlchemy's) and, on PostgreSQL, the event loop's (asyncpg's)."""
        return pool_use(self.runtime.engine)

    async def flush_key_usage(self) -> int:
        """Write the key usage gathered since the last flush; how many keys."""
        return await self.blocking(self.runtime.flush_key_usage)

    async def aclose(self) -> None:
        """Close what is held on the event loop."""


class SqliteExecution(Execution):
    """Reads on the event loop's pinned connection, through the read cache."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.reader = PinnedReader(runtime.engine)
        self.cache = ReadCache(self.reader.data_version)
        self.loop_flush_max_keys = LOOP_FLUSH_MAX_KEYS

    async def read(self, work: Read[T], *, offload: bool = False) -> T:
        if offload:
            return await super().read(work)
        self.cache.refresh()
        with self.reader.transaction() as db:
            return work(db, self.cache)

    async def flush_key_usage(self) -> int:
        """A few keys (one busy customer): on the event loop's own connection, which
        leaves the read cache alone (``flush_key_usage_here``); many keys or a busy
        write lock: in a worker thread, so that the event loop never stalls for a write
        that grows with the number of keys in use."""
        usage = self.runtime.key_usage
        if usage.pending() <= self.loop_flush_max_keys:
            written = self.flush_key_usage_here()
            if written or not usage.pending():
                return written
        return await super().flush_key_usage()

    def flush_key_usage_here(self) -> int:
        """Write the gathered key usage on the event loop's own connection.

        Its commit does not change that connection's ``data_version``, so the read cache
        survives it (a flush through the pool empties the cache every few seconds). It
        never waits: when a writer holds the lock, the uses are kept for the next try.
        """
        usage = self.runtime.key_usage
        uses = usage.take()
        if not uses:
            return 0
        try:
            written = self.reader.try_write(RECORD_USES, key_use_rows(uses))
        except BaseException:
            usage.give_back(uses)
            raise
        if not written:
            usage.give_back(uses)
            return 0
        return len(uses)

    async def aclose(self) -> None:
        self.reader.close()


class PostgresExecution(Execution):
    """Reads on the event loop through asyncpg; the same code, in a greenlet."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        settings = runtime.settings
        self.loop_reads = LoopReads(
            settings.database_url,
            settings.db_pool_size,
            timeout=settings.db_timeout,
            connect_timeout=settings.db_connect_timeout,
        )

    async def read(self, work: Read[T], *, offload: bool = False) -> T:
        if offload:
            return await super().read(work)
        with fail_after(self.database_wait):
            return await self.loop_reads.run(partial(_without_cache, work))

    async def flush_key_usage(self) -> int:
        """Through asyncpg on the event loop: its ``executemany`` sends every row in one
        go, and no thread holds the GIL preparing them."""
        usage = self.runtime.key_usage
        uses = usage.take()
        if uses:
            try:
                await self.loop_reads.execute_many(RECORD_USES, key_use_rows(uses))
            except BaseException:
                usage.give_back(uses)
                raise
        return len(uses)

    def pools(self) -> dict[str, tuple[int, int]]:
        return {**super().pools(), "event_loop": self.loop_reads.usage()}

    async def aclose(self) -> None:
        await self.loop_reads.aclose()


def _without_cache(work: Read[T], db: Db) -> T:
    return work(db, None)
