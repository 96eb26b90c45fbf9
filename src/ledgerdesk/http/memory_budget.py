"""A bound on the request-body bytes a process holds in memory at once, shared fairly.

A JSON or form body reserves twice each piece's length (the raw bytes and what they
parse into) as the piece arrives, never what the client merely declares: a connection
that announces 150 MB and sends a byte now and then holds nothing. Once a body has sent
its first 256 KiB it reserves the rest of its declared length at once, so that bodies
arriving together do not each hold a part while waiting for the rest (``BodyReader``).
A multipart body reserves room for its text fields (its files stream to disk). A request
that does not fit waits up to ``WAIT_SECONDS`` for others to finish, then is answered
503 with ``Retry-After``: a server under a flood of large bodies slows down and says so,
rather than being killed for running out of memory.

**Fair between clients.** One client address may use the whole budget while nobody else
needs it. When another address has waited ``RECLAIM_AFTER`` seconds, an address that
holds more than half of the budget gives back: its largest body still arriving is cut
off with 503 (the client may retry), and the waiting request goes ahead. A body already
read whole is never cut off: it is about to be answered and will release its bytes.

Bodies under ``SMALL_BODY`` are not counted: the connection caps bound them (a
thousand connections hold at most 64 MiB of them), and counting them would cost every
request for nothing.

Everything here runs on the event loop, so reserving and releasing need no lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ledgerdesk import metrics
from ledgerdesk.errors import ServerBusy

WAIT_SECONDS = 5.0
# How long a request waits before an address over its share must give memory back.
RECLAIM_AFTER = 1.0
SMALL_BODY = 64 * 1024
RETRY_AFTER_SECONDS = 2
T = TypeVar("T")


def _busy() -> ServerBusy:
    metrics.memory_refusals.labels("busy").inc()
    return ServerBusy(
        RETRY_AFTER_SECONDS, "The server is busy with other large requests; retry shortly."
    )


def _reclaimed() -> ServerBusy:
    metrics.memory_refusals.labels("reclaimed").inc()
    return ServerBusy(
        RETRY_AFTER_SECONDS,
        "Your address holds more than its share of the server's memory while others "
        "wait; retry shortly.",
    )


class MemoryBudget:
    def __init__(
        self,
        total: int,
        *,
        wait_seconds: float = WAIT_SECONDS,
        reclaim_after: float = RECLAIM_AFTER,
    ) -> None:
        self.total = total
        self.free = total
        # What one address may keep while another waits.
        self.share = total // 2
        self.wait_seconds = wait_seconds
        self.reclaim_after = min(reclaim_after, wait_seconds)
        self._waiters: deque[tuple[int, anyio.Event]] = deque()
        # Bytes held by each client address.
        self.held_by: dict[str, int] = {}
        # Reservations whose body is still arriving: the ones that can give back.
        self._arriving: set[Reservation] = set()

    async def reserve(self, amount: int, reservation: Reservation) -> int:
        """Take ``amount`` bytes (at most the whole budget); returns what was taken."""
        amount = min(amount, self.total)
        if amount <= self.free and not self._waiters:
            self._grant(amount, reservation)
            return amount
        metrics.memory_waits.inc()
        event = anyio.Event()
        waiter = (amount, event)
        self._waiters.append(waiter)
        with anyio.move_on_after(self.reclaim_after):
            await event.wait()
        if not event.is_set():
            self._reclaim(reservation.client, waiter)
            with anyio.move_on_after(self.wait_seconds - self.reclaim_after):
                await event.wait()
        if event.is_set():
            # ``_wake`` took the bytes from ``free`` when it handed them over.
            self.held_by[reservation.client] = self.held_by.get(reservation.client, 0) + amount
            return amount
        self._waiters.remove(waiter)
        self._wake()  # a smaller request behind this one may fit now
        raise _busy()

    def release(self, amount: int, client: str) -> None:
        left = self.held_by.get(client, 0) - amount
        if left > 0:
            self.held_by[client] = left
        else:
            self.held_by.pop(client, None)
        self.free += amount
        self._wake()

    def _grant(self, amount: int, reservation: Reservation) -> None:
        self.free -= amount
        client = reservation.client
        self.held_by[client] = self.held_by.get(client, 0) + amount

    def _wake(self) -> None:
        # First come, first served: a large body waiting is not overtaken for ever.
        while self._waiters and self._waiters[0][0] <= self.free:
            amount, event = self._waiters.popleft()
            self.free -= amount
            event.set()

    def _reclaim(self, waiting_client: str, waiter: tuple[int, anyio.Event]) -> None:
        """Cut off the largest arriving body of each other address over its share; the
        bytes go to ``waiter`` first (not to another body of the same address queued
        before it)."""
        over = {
            client
            for client, held in self.held_by.items()
            if held > self.share and client != waiting_client
        }
        victims = []
        for client in over:
            candidates = [r for r in self._arriving if r.client == client and r.held]
            if candidates:
                victims.append(max(candidates, key=lambda r: r.held))
        if victims and waiter in self._waiters:
            self._waiters.remove(waiter)
            self._waiters.appendleft(waiter)
        for victim in victims:
            victim.revoke()

    def arriving(self, reservation: Reservation, arriving: bool) -> None:
        if arriving:
            self._arriving.add(reservation)
        else:
            self._arriving.discard(reservation)


class Reservation:
    """The bytes one request holds; released together when the request ends."""

    def __init__(self, budget: MemoryBudget, client: str = "unknown") -> None:
        self.budget = budget
        self.client = client
        self.asked = 0
        self.held = 0
        self.revoked = False
        self._scope: anyio.CancelScope | None = None

    async def take(self, amount: int) -> None:
        """Hold ``amount`` more bytes (a body read piece by piece asks for each piece)."""
        if self.revoked:
            raise _reclaimed()
        self.asked += amount
        if self.asked < SMALL_BODY:
            return
        # One request holds at most the whole budget (a body larger than it runs alone).
        wanted = min(self.asked, self.budget.total) - self.held
        if wanted > 0:
            self.held += await self.budget.reserve(wanted, self)

    async def arriving(self, receive: Callable[[], Awaitable[T]]) -> T:
        """Wait for the next piece of the body; a body holding memory may be cut off
        meanwhile (``MemoryBudget._reclaim``), and then this raises 503."""
        if not self.held:
            return await receive()
        with anyio.CancelScope() as scope:
            self._scope = scope
            self.budget.arriving(self, True)
            try:
                return await receive()
            finally:
                self._scope = None
                self.budget.arriving(self, False)
        raise _reclaimed()  # only reached when the scope was cancelled by ``revoke``

    def revoke(self) -> None:
        """Give the bytes back now and cut the body off (its reader raises 503)."""
        self.revoked = True
        self.release()
        if self._scope is not None:
            self._scope.cancel()

    def release(self) -> None:
        if self.held:
            self.budget.release(self.held, self.client)
            self.held = 0
