"""What every consumer of the event log shares (the webhook relay, the mail relay): a
loop of rounds, woken when events commit, by a poll, or when more is waiting.

A round runs its transactions one at a time in a thread of its own and says how long
to wait for the next. The consumer is woken by ``events.work.on_commit`` in its own
process, on PostgreSQL by ``LISTEN`` on the channel the event insert notifies (every
process on every machine), and at least every ``poll`` seconds (leases that ran out;
SQLite's other processes). Rounds are at least ``MIN_ROUND_SECONDS`` apart, so a burst
of commits is one round. A round that fails is tried again after a growing pause; a
database outage is one line in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from anyio import CapacityLimiter, to_thread

from ledgerdesk.db.outage import is_outage
from ledgerdesk.events.work import EVENTS_CHANNEL, on_commit
from ledgerdesk.runtime import Runtime

MIN_ROUND_SECONDS = 0.02
SQLITE_POLL = 1.0
POSTGRES_POLL = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Consumer:
    """Subclasses implement ``round`` (and ``closing`` for what they hold open)."""

    name = "consumer"

    def __init__(self, runtime: Runtime, poll: float | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.poll = (
            poll
            if poll is not None
            else (SQLITE_POLL if self.settings.is_sqlite else POSTGRES_POLL)
        )
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._database = CapacityLimiter(1)

    def poke(self) -> None:
        """Wake the consumer (from any thread): an event was committed."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not wake.is_set():
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        """Work until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stop = on_commit(self.poke)
        try:
            async with anyio.create_task_group() as tasks:
                if not self.settings.is_sqlite:
                    tasks.start_soon(self._listen)
                await self._rounds(tasks)
        finally:
            stop()
            await self.closing()

    async def round(self, tasks: anyio.abc.TaskGroup) -> float:
        """One round; how long to wait before the next (0: at once)."""
        raise NotImplementedError

    async def closing(self) -> None:
        """Close what the rounds kept open."""

    async def in_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` in the consumer's thread, one at a time."""
        return await to_thread.run_sync(work, *args, limiter=self._database)

    async def _rounds(self, tasks: anyio.abc.TaskGroup) -> None:
        assert self._wake is not None
        log = logging.getLogger(f"ledgerdesk.{self.name}")
        failures = 0
        while True:
            started = time.monotonic()
            self._wake.clear()
            wait = self.poll
            try:
                wait = await self.round(tasks)
                failures = 0
            except Exception as exc:
                failures += 1
                wait = min(2.0**failures, 30.0)
                if is_outage(exc):
                    log.warning("%s: database unavailable (%s)", self.name, type(exc).__name__)
                else:
                    log.exception("%s round failed; trying again in %.0f s", self.name, wait)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            spent = time.monotonic() - started
            if spent < MIN_ROUND_SECONDS:
                await anyio.sleep(MIN_ROUND_SECONDS - spent)

    async def _listen(self) -> None:
        """PostgreSQL: hear of every commit that recorded events, from any process."""
        import asyncpg  # the server's PostgreSQL driver for the event loop
        from sqlalchemy.engine import make_url

        log = logging.getLogger(f"ledgerdesk.{self.name}")
        dsn = make_url(self.settings.database_url).set(drivername="postgresql")
        failures = 0
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(
                    dsn.render_as_string(hide_password=False),
                    timeout=self.settings.db_connect_timeout,
                )
                await connection.add_listener(EVENTS_CHANNEL, lambda *_: self.poke())
                failures = 0
                self.poke()  # whatever was committed while not listening
                while not connection.is_closed():
                    await anyio.sleep(self.poll)
            except Exception as exc:
                failures += 1
                log.warning("%s: not listening (%s); trying again", self.name, type(exc).__name__)
                await anyio.sleep(min(2.0**failures, 30.0))
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
