"""A bound on the request-body bytes a process holds in memory at once.

Each JSON or form body reserves twice its length (the raw bytes and what they parse
into) before it is read; a multipart body reserves room for its text fields (its files
stream to disk). A body larger than the whole budget may still run, alone. A request
that does not fit waits up to ``WAIT_SECONDS`` for others to finish, then is answered
503 with ``Retry-After``: a server under a flood of large bodies slows down and says
so, rather than being killed for running out of memory.

Bodies under ``SMALL_BODY`` are not counted: the connection cap bounds them (a
thousand connections hold at most 64 MiB of them), and counting them would cost every
request for nothing.

Everything here runs on the event loop, so reserving and releasing need no lock.
"""

from __future__ import annotations

from collections import deque

import anyio

from ledgerdesk.errors import ServerBusy

WAIT_SECONDS = 5.0
SMALL_BODY = 64 * 1024
RETRY_AFTER_SECONDS = 2


class MemoryBudget:
    def __init__(self, total: int, *, wait_seconds: float = WAIT_SECONDS) -> None:
        self.total = total
        self.free = total
        self.wait_seconds = wait_seconds
        self._waiters: deque[tuple[int, anyio.Event]] = deque()

    async def reserve(self, amount: int) -> int:
        """Take ``amount`` bytes (at most the whole budget); returns what was taken."""
        amount = min(amount, self.total)
        if amount <= self.free and not self._waiters:
            self.free -= amount
            return amount
        event = anyio.Event()
        waiter = (amount, event)
        self._waiters.append(waiter)
        with anyio.move_on_after(self.wait_seconds):
            await event.wait()
        if event.is_set():
            return amount  # the bytes were handed over by ``release``
        self._waiters.remove(waiter)
        self._wake()  # a smaller request behind this one may fit now
        raise ServerBusy(
            RETRY_AFTER_SECONDS,
            "The server is busy with other large requests; retry shortly.",
        )

    def release(self, amount: int) -> None:
        self.free += amount
        self._wake()

    def _wake(self) -> None:
        # First come, first served: a large body waiting is not overtaken for ever.
        while self._waiters and self._waiters[0][0] <= self.free:
            amount, event = self._waiters.popleft()
            self.free -= amount
            event.set()


class Reservation:
    """The bytes one request holds; released together when the request ends."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.asked = 0
        self.held = 0

    async def take(self, amount: int) -> None:
        """Hold ``amount`` more bytes (a body read piece by piece asks for each piece)."""
        self.asked += amount
        if self.asked < SMALL_BODY:
            return
        # One request holds at most the whole budget (a body larger than it runs alone).
        wanted = min(self.asked, self.budget.total) - self.held
        if wanted > 0:
            self.held += await self.budget.reserve(wanted)

    def release(self) -> None:
        if self.held:
            self.budget.release(self.held)
            self.held = 0
