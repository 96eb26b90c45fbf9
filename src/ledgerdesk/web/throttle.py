"""Throttling guesses at the web's doors: passwords at sign-in, second-factor codes.

Counted per account *and* client address, never per account alone: five wrong
passwords from an attacker's address slow down that address's tries at that account,
while the account's owner, from anywhere else, signs in as usual. Nobody who merely
knows an email address can lock its owner out.

- The first ``free`` attempts of an account from an address in the window
  (``SIGNIN_WINDOW``) are tried at once. After the last of them the address must wait
  before each further try at that account, and the wait doubles: 1 s, 2 s, 4 s ... up
  to the window's length.
- One address may try ``per_address`` times in the window across all accounts (an
  office behind one NAT counts as one address).
- Every attempt is counted *before* it is tried, in the same atomic step that checks the
  count (a local counter on the event loop, or Redis' INCR): forty guesses sent at once
  are not all tried while the first are still being hashed. A success gives its
  counts back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ledgerdesk.http.counters import Counters

SIGNIN_WINDOW = 15 * 60


class Throttled(Exception):
    """Not tried now; ``retry_after`` seconds until the next try may be made."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


@dataclass(frozen=True)
class Attempt:
    """One counted try at a door; ``succeeded`` gives its counts back."""

    pair: str
    wait: str
    address: str


class Throttle:
    def __init__(self, limits: Counters, *, free: int, per_address: int) -> None:
        self.limits = limits
        self.free = free
        self.per_address = per_address

    async def attempt(self, door: str, account: str, address: str) -> Attempt:
        """Count a try of ``account`` from ``address`` at ``door``, or refuse it."""
        limits = self.limits
        pair = f"{door}/pair/{account}/{address}"
        wait = f"{door}/wait/{account}/{address}"
        waiting, until = await limits.peek(wait)
        if waiting:
            raise Throttled(self._seconds_until(until))
        address_counter = f"{door}/address/{address}"
        count, until = await limits.hit(address_counter)
        if count > self.per_address:
            raise Throttled(self._seconds_until(until))
        tries, _ = await limits.hit(pair)
        if tries >= self.free:
            # This try goes ahead and the next must wait; of tries sent at once, only
            # the first to take the wait goes ahead.
            delay = min(2 ** min(tries - self.free, 20), SIGNIN_WINDOW)
            taken, until = await limits.hit(wait, expiry=delay)
            if taken > 1:
                await limits.hit(address_counter, amount=-1)
                raise Throttled(self._seconds_until(until))
        return Attempt(pair, wait, address_counter)

    async def succeeded(self, attempt: Attempt) -> None:
        """A right password or code: the account's tries from there start afresh."""
        await self.limits.clear(attempt.pair)
        await self.limits.clear(attempt.wait)
        await self.limits.hit(attempt.address, amount=-1)

    def _seconds_until(self, until: float) -> int:
        return max(1, math.ceil(until - self.limits.clock()))

    async def aclose(self) -> None:
        await self.limits.aclose()
