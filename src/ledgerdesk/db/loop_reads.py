"""PostgreSQL reads on the event loop: asyncpg, without a thread per request.

The request path is synchronous code (authentication, the action's handler, its
queries through ``Db``) so that the same code serves SQLite, the admin CLI and worker
threads. Handing each PostgreSQL read to a worker thread cost more CPU than the queries
(a thread hop is ~40 µs under load, and several context switches per request). Instead
the synchronous code runs in a greenlet on the event loop itself; when a query needs
the database, ``wait`` hands the driver's coroutine to the event loop and the greenlet
resumes with its result. Other requests run meanwhile, as with any coroutine.

The statements are the same ``Prepared`` ones, compiled for asyncpg's dialect (``$1``
parameters); asyncpg prepares and caches each statement per connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import await_only, greenlet_spawn

from ledgerdesk.db.prepared import Db, Prepared, compiled_write

T = TypeVar("T")

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
WRITE_SLICE = 500


# The bridge between the synchronous code and the loop is SQLAlchemy's own (the one its
# asyncio extension runs on): ``run_bridged`` runs a function in a greenlet on the loop;
# inside it, ``wait`` hands an awaitable to the loop and resumes with its result.
run_bridged = greenlet_spawn
wait = await_only


class LoopDb(Db):
    """``Db`` over an asyncpg connection, for code run by ``run_bridged``.

    Each statement runs on its own (asyncpg's implicit transaction), as the pooled
    PostgreSQL reads do (see ``read_transaction``).
    """

    __slots__ = ()

    def _rows(
        self, query: Prepared, params: dict[str, Any], *, binary: bool
    ) -> list[tuple[Any, ...]]:
        # asyncpg always reads results in the binary format.
        compiled = query.compiled(self.dialect)
        arguments = compiled.parameters(params)
        assert isinstance(arguments, tuple)
        records: list[Any] = wait(self.connection.fetch(compiled.sql, *arguments))
        return compiled.convert(records)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    # JSON columns read as Python values, as psycopg gives them.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _unchanged_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection returns to the pool.

    asyncpg's default sends ``RESET ALL; UNLISTEN *; CLOSE ALL; ...``, a round trip per
    request. These connections only ever run single statements outside a transaction
    (and ``execute_many``'s transactions, which end before release): no session
    settings, listeners, cursors or advisory locks are ever left behind. A statement
    interrupted mid-way closes its connection instead (asyncpg).
    """


class LoopReads:
    """An asyncpg pool for the reads of requests, and the way to run them.

    The pool belongs to the event loop that first used it. It is closed by ``aclose``
    (the server's shutdown) or, failing that, when that loop shuts down: it lives in an
    async generator, which asyncio closes at the end of ``asyncio.run``.
    """

    def __init__(
        self,
        database_url: str,
        pool_size: int,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.pool_size = pool_size
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._lifetime: AsyncGenerator[asyncpg.Pool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()
        self._turns = asyncio.Semaphore(pool_size)

    async def run(self, function: Callable[[Db], T]) -> T:
        """``function(db)`` on the event loop, with a pooled connection."""
        pool = await self._current_pool()
        # In order of arrival: asyncpg's own queue lets a newcomer take a connection
        # that was just handed to a waiter, which then queues again at the back
        # (p99 of 90 ms against 5 ms at the median, with 32 requests for 10 connections).
        async with self._turns, pool.acquire() as connection:
            return await run_bridged(function, LoopDb(connection, _DIALECT))

    async def execute_many(self, statement: UpdateBase, rows: list[dict[str, Any]]) -> None:
        """``statement`` once per row, in order, in one transaction (bookkeeping writes
        such as key usage, which would otherwise hold the GIL in a worker thread)."""
        sql, names = compiled_write(statement, _DIALECT)
        pool = await self._current_pool()
        async with pool.acquire() as connection, connection.transaction():
            # In slices, so that preparing the arguments never holds the loop for long.
            for start in range(0, len(rows), WRITE_SLICE):
                arguments = [
                    tuple([row[n] for n in names]) for row in rows[start : start + WRITE_SLICE]
                ]
                await connection.executemany(sql, arguments)

    def usage(self) -> tuple[int, int]:
        """Connections in use and idle now."""
        pool = self._pool
        if pool is None:
            return 0, 0
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle

    async def _current_pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (each test has its own)
            self._loop, self._pool, self._lifetime = loop, None, None
            self._opening = asyncio.Lock()
            self._turns = asyncio.Semaphore(self.pool_size)
        pool = self._pool
        if pool is None:
            async with self._opening:  # the first requests at once open one pool
                if self._pool is None:
                    lifetime = self._pool_lifetime()
                    self._pool = await anext(lifetime)
                    self._lifetime = lifetime
                pool = self._pool
        return pool

    async def _pool_lifetime(self) -> AsyncGenerator[asyncpg.Pool]:
        # Every query times out on the client too (command_timeout): a server that hangs
        # never answers its own statement_timeout.
        # No floor of open connections: asyncpg would reopen it in the background, and
        # log a traceback each time it could not while the server is down.
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.pool_size,
            init=_json_codecs,
            reset=_unchanged_session,
            timeout=self.connect_timeout,
            command_timeout=self.timeout,
            server_settings={"statement_timeout": str(round(self.timeout * 1000))},
        )
        try:
            yield pool
        finally:
            try:
                # A connection of a server that hangs never closes: drop it instead.
                async with asyncio.timeout(self.connect_timeout):
                    await pool.close()
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    async def aclose(self) -> None:
        lifetime, self._lifetime, self._pool = self._lifetime, None, None
        if lifetime is not None:
            await lifetime.aclose()
