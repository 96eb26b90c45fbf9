"""What the console's open pages hear of the event log: the tickets it says changed.

One ``LiveFeed`` a process, a consumer of the log like the relays (woken by commits in
its process, by PostgreSQL's ``LISTEN`` from every process, by a poll): each round reads
the events after its place, once for every page listening, and hands each page's queue
the tickets they touched. A page subscribes and then reads what it missed between the
moment it was drawn and that subscription itself (``missed``), so no change falls in
between and none comes twice. A page that stops reading has its queue replaced by one
"reload" (``None``) rather than the feed waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import anyio.abc
from sqlalchemy import func, select

from ledgerdesk.consumers import Consumer
from ledgerdesk.db.models import DomainEvent as Event
from ledgerdesk.runtime import Runtime

BATCH = 500  # events read in one round
QUEUE_SIZE = 200  # changes a page may fall behind before it is told to reload


class Change(NamedTuple):
    """An event about a ticket: its id in the log (the page's place), its type, which."""

    id: int
    type: str
    ticket_id: int


class LiveFeed(Consumer):
    name = "live"

    def __init__(self, runtime: Runtime, poll: float | None = None) -> None:
        super().__init__(runtime, poll)
        self.position: int | None = None  # the last event read
        self._pages: set[asyncio.Queue[Change | None]] = set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[tuple[asyncio.Queue[Change | None], int | None]]:
        """A page's queue of changes from now on, and the feed's place in the log now
        (None: not read yet; the page reads everything after its own place itself)."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE)
        self._pages.add(queue)
        try:
            yield queue, self.position
        finally:
            self._pages.discard(queue)

    def missed(self, after: int, upto: int | None) -> list[Change]:
        """The changes after ``after`` up to ``upto`` (None: up to now), at most a batch;
        blocking: run it in a thread."""
        query = _CHANGES.where(Event.id > after)
        if upto is not None:
            query = query.where(Event.id <= upto)
        with self.runtime.transaction(write=False) as (session, _):
            rows = session.execute(query.limit(BATCH)).all()
        return [Change(row[0], row[1], row[2]) for row in rows if row[2] is not None]

    async def round(self, tasks: anyio.abc.TaskGroup) -> float:
        if self.position is None or not self._pages:
            # Nobody listens: only keep the place (one read of the newest id).
            self.position = await self.in_thread(self._newest)
            return self.poll
        rows = await self.in_thread(self._after, self.position)
        if rows:
            self.position = rows[-1][0]
        for queue in list(self._pages):
            for row in rows:
                if row[1].startswith("ticket.") and row[2] is not None:
                    _offer(queue, Change(*row))
        return 0 if len(rows) == BATCH else self.poll

    def _newest(self) -> int:
        with self.runtime.transaction(write=False) as (session, _):
            return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)

    def _after(self, after: int) -> list[tuple[int, str, int | None]]:
        with self.runtime.transaction(write=False) as (session, _):
            query = select(Event.id, Event.type, Event.subject_id).where(Event.id > after)
            rows = session.execute(query.order_by(Event.id).limit(BATCH)).all()
        return [(row[0], row[1], row[2]) for row in rows]


def _offer(queue: asyncio.Queue[Change | None], change: Change) -> None:
    """Into a page's queue; a page this far behind is told to reload instead."""
    try:
        queue.put_nowait(change)
    except asyncio.QueueFull:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)


_CHANGES = (
    select(Event.id, Event.type, Event.subject_id)
    .where(Event.type.like("ticket.%"), Event.subject_id.is_not(None))
    .order_by(Event.id)
)
