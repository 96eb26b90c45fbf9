"""Rate limits (SPEC section 1: 4002, ``RateLimit-*`` on every answer, ``Retry-After``).

Two limits, both fixed windows of one minute (``LEDGERDESK_RATE_LIMIT_WINDOW``):

- **per key**: ``LEDGERDESK_RATE_LIMIT`` requests a minute for each API key presented.
  The bucket is named after the user id and a keyed digest of the key (never the key
  itself, nor the hash stored in the database), so it can be counted before the
  database is asked; a wrong key only spends a bucket nobody else uses.
- **per client address, failed authentications**: after
  ``LEDGERDESK_AUTH_FAILURE_LIMIT`` failed authentications in a minute, every request
  from that address is answered 4002 until the window ends, valid credentials or not,
  so that guessing keys gets nowhere. Credentials not yet proven right in this process
  are checked only while the address's failures plus its checks in flight stay under
  the limit (the others wait their turn): forty guesses sent at once cannot all pass a
  limit of ten while the first are still being checked. A key that proved right is
  remembered (by its bucket's name), so the usual request pays nothing.

The counters are ``http.counters``: this process's memory, or Redis when several
processes or machines share the load (failing open to memory while Redis is down).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, TypeVar

import anyio

from ledgerdesk.accounts.keys import is_well_formed_key
from ledgerdesk.errors import AuthenticationFailed, RateLimited, ServerBusy
from ledgerdesk.http.counters import WINDOW_SECONDS, Counters

# Buckets of credentials proven right, remembered per process (then forgotten at once).
PROVEN_BUCKETS = 65536
# How long unproven credentials wait for a turn to be checked (see RateLimits.admission).
UNCHECKED_WAIT = 5.0
_KEY_DIGEST = b"ledgerdesk rate-limit bucket"
T = TypeVar("T")


class Quota(NamedTuple):
    """What ``RateLimit-*`` say about the limit that applies to a request."""

    limit: int
    remaining: int
    reset_at: float

    def headers(self, now: float) -> list[tuple[bytes, bytes]]:
        reset = max(0, math.ceil(self.reset_at - now))
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


class RateLimits:
    def __init__(
        self,
        *,
        per_key: int,
        auth_failures: int,
        per_customer: int | None = None,
        redis_url: str | None = None,
        window: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_key = per_key
        self.auth_failures = auth_failures
        self.per_customer = per_customer if per_customer is not None else 2 * per_key
        self.clock = clock
        self.counters = Counters(redis_url=redis_url, window=window, clock=clock)
        # Buckets of credentials that authenticated in this process (bounded); checks of
        # unproven credentials in flight by address, and an event set when one ends.
        self.proven: dict[str, None] = {}
        self.in_flight: dict[str, int] = {}
        self.turns_waiting: dict[str, deque[_Waiter]] = {}

    @staticmethod
    @lru_cache(maxsize=16384)
    def key_bucket(user_id: int | None, api_key: str | None) -> str | None:
        """The per-key counter of these credentials, or None if they can't be a key."""
        if user_id is None or api_key is None or not is_well_formed_key(api_key):
            return None
        digest = hashlib.blake2b(api_key.encode(), digest_size=10, key=_KEY_DIGEST).hexdigest()
        return f"key/{user_id}/{digest}"

    @staticmethod
    def address_counter(address: str) -> str:
        return f"authfail/{address}"

    def is_proven(self, bucket: str | None) -> bool:
        """Whether these credentials authenticated here before (then they need no turn
        to be checked: see ``admission``)."""
        return bucket is not None and bucket in self.proven

    def prove(self, bucket: str | None) -> None:
        if bucket is None or bucket in self.proven:
            return
        if len(self.proven) >= PROVEN_BUCKETS:
            self.proven.clear()
        self.proven[bucket] = None

    async def admit(
        self, address: str, bucket: str | None, *, customer: int | None = None
    ) -> Quota:
        """Spend one request of ``bucket``; 4002 when it or the address is over its limit.

        Without a bucket (no usable credentials) the address's failure budget is what
        the answer's headers describe. ``customer``: whose key it is, for credentials
        proven right: one of that customer's requests across all their keys is spent
        too (``per_customer``); anyone may name a customer, only a right key spends
        their budget.
        """
        failures_key = self.address_counter(address)
        limit = self.auth_failures
        failures, count, reset_at = await self.counters.admit(failures_key, bucket, limit)
        if failures >= limit:
            raise RateLimitExceeded(
                Quota(limit, 0, reset_at),
                self.clock(),
                "Too many failed authentications; retry later.",
                limit="authentication",
            )
        if bucket is None:
            return Quota(limit, limit - failures, reset_at)
        quota = Quota(self.per_key, max(0, self.per_key - count), reset_at)
        if count > self.per_key:
            raise RateLimitExceeded(
                quota, self.clock(), "Too many requests for this API key; retry later.", limit="key"
            )
        if customer is not None:
            counter = self.customer_counter(customer)
            spent = await self.counters.count_one(counter)
            if spent > self.per_customer:
                _, until = await self.peek(counter)
                raise RateLimitExceeded(
                    Quota(self.per_customer, 0, until),
                    self.clock(),
                    "Too many requests for this customer's keys together; retry later.",
                    limit="customer",
                )
        return quota

    @asynccontextmanager
    async def admission(
        self, address: str, bucket: str | None, customer: int | None, *, real: bool = False
    ) -> AsyncIterator[Admission]:
        """Admit a request (4002 when over a limit), then account for how its
        credentials fared: an ``AuthenticationFailed`` leaving the block counts against
        the address; credentials proven right (``Admission.proven``) are remembered.

        Credentials not yet proven right in this process are checked only while the
        address's failures plus its checks in flight stay under the limit; more wait
        for a check to end (503 after ``UNCHECKED_WAIT`` seconds). Forty guesses sent
        at once cannot pass a limit of ten while the first are still being checked
        (they passed when failures were counted after the check), and many right keys
        from one address (a panel serving many customers) are not refused: they wait
        their turn, and a key proven right skips the line from then on. ``real``: the
        credentials match a key known to exist (``accounts.known_keys``): no guess, no
        turn to wait for (they are still checked, and a wrong one still counts).
        """
        unproven = not real and not self.is_proven(bucket)
        if unproven:
            await self._take_turn(address, bucket)
        try:
            quota = await self.admit(address, bucket, customer=None if unproven else customer)
        except BaseException:
            if unproven:
                self._end_turn(address, failed=False)
            raise
        admitted = Admission(quota)
        try:
            yield admitted
        except AuthenticationFailed:
            admitted.failed = True
            admitted.quota = await self.failed_authentication(address)
            raise
        finally:
            if unproven:
                self._end_turn(address, failed=admitted.failed)
                if admitted.proven:
                    self.prove(bucket)
                    if customer is not None:
                        with anyio.CancelScope(shield=True):
                            await self.spent_by(customer)

    async def _take_turn(self, address: str, bucket: str | None) -> None:
        """Wait until the address may have one more unproven check in flight. A check
        that proves right hands its turn to the next waiter, in order of arrival; one
        that fails wakes every waiter to look again (the address may now be blocked)."""
        deadline = anyio.current_time() + UNCHECKED_WAIT
        while True:
            if bucket is not None and bucket in self.proven:
                return  # proven by a request that was ahead: no turn needed
            failures, reset_at = await self.peek(self.address_counter(address))
            if failures >= self.auth_failures:
                raise RateLimitExceeded(
                    Quota(self.auth_failures, 0, reset_at),
                    self.clock(),
                    "Too many failed authentications; retry later.",
                    limit="authentication",
                )
            queue = self.turns_waiting.setdefault(address, deque())
            if not queue and failures + self.in_flight.get(address, 0) < self.auth_failures:
                self.in_flight[address] = self.in_flight.get(address, 0) + 1
                return
            waiter = _Waiter()
            queue.append(waiter)
            with anyio.move_on_after(deadline - anyio.current_time()):
                await waiter.event.wait()
            if waiter.handed:
                return  # the turn of a check that proved right
            if waiter in queue:
                queue.remove(waiter)
            if not queue and self.turns_waiting.get(address) is queue:
                del self.turns_waiting[address]
            if not waiter.event.is_set():
                raise ServerBusy(
                    1, "Too many unchecked credentials from your address at once; retry shortly."
                )

    def _end_turn(self, address: str, *, failed: bool) -> None:
        """A check ended: a right key's turn goes to the next waiter; after a failure
        every waiter looks again."""
        queue = self.turns_waiting.get(address)
        if queue and not failed:
            waiter = queue.popleft()
            waiter.handed = True
            waiter.event.set()
            return
        left = self.in_flight.get(address, 0) - 1
        if left > 0:
            self.in_flight[address] = left
        else:
            self.in_flight.pop(address, None)
        for waiter in queue or ():
            waiter.event.set()
        self.turns_waiting.pop(address, None)

    async def peek_address(self, address: str) -> Quota:
        """The address's failure budget, spending nothing."""
        failures, reset_at = await self.peek(self.address_counter(address))
        return Quota(self.auth_failures, max(0, self.auth_failures - failures), reset_at)

    async def failed_authentication(self, address: str) -> Quota:
        """Count a failed authentication against the address."""
        count, reset_at = await self.hit(self.address_counter(address))
        return Quota(self.auth_failures, max(0, self.auth_failures - count), reset_at)

    @staticmethod
    def customer_counter(customer: int) -> str:
        return f"customer/{customer}"

    async def spent_by(self, customer: int) -> None:
        """Count a request of credentials that proved right after it was admitted
        (``admit`` counts a customer's requests only for credentials proven before)."""
        await self.counters.count_one(self.customer_counter(customer))

    async def peek(self, counter: str) -> tuple[int, float]:
        return await self.counters.peek(counter)

    async def hit(self, counter: str) -> tuple[int, float]:
        return await self.counters.hit(counter)

    async def aclose(self) -> None:
        await self.counters.aclose()

    @property
    def using_shared_store(self) -> bool:
        return self.counters.using_shared_store


@dataclass(eq=False)
class _Waiter:
    """A request waiting for a turn to have its unproven credentials checked."""

    event: anyio.Event = field(default_factory=anyio.Event)
    handed: bool = False


@dataclass
class Admission:
    """One request admitted by ``RateLimits.admission``: the quota its answer states,
    and what became of its credentials (set by the caller)."""

    quota: Quota
    failed: bool = False
    proven: bool = False


class RateLimitExceeded(RateLimited):
    """``limit``: which one refused (key, customer, authentication), for the metrics."""

    def __init__(self, quota: Quota, now: float, message: str, *, limit: str) -> None:
        super().__init__(quota.retry_after(now), message)
        self.quota = quota
        self.limit = limit
