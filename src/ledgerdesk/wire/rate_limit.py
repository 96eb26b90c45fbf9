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

Counters live in this process (``LocalWindows``), or in Redis through the ``limits``
library's Redis store (an atomic increment that starts the window's expiry) when
several processes or machines share the load (``LEDGERDESK_REDIS_URL``). If Redis
stops answering, the limits fail open to this process's own counters (logged once)
and go back to Redis when it answers again, checked at most every ``RETRY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, TypeVar

import anyio
import redis.asyncio
from limits.aio.storage import RedisStorage as AsyncRedisStorage

from ledgerdesk.accounts.keys import is_well_formed_key
from ledgerdesk.errors import AuthenticationFailed, RateLimited, ServerBusy

log = logging.getLogger("ledgerdesk.rate_limit")

WINDOW_SECONDS = 60
RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.25
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


class LocalWindows:
    """Fixed windows counted in this process's memory (its event loop only).

    ``limits`` has an in-memory store, but it starts a thread every 10 ms that walks
    every key while holding the GIL: with tens of thousands of customers that costs more
    than the requests themselves. Here expired windows are dropped lazily, and swept
    whenever the table has doubled since the last sweep.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.windows: dict[str, list[float]] = {}  # key -> [count, window end]
        self.sweep_at = 1024

    def get(self, key: str) -> int:
        window = self.windows.get(key)
        if window is None or window[1] <= self.clock():
            return 0
        return int(window[0])

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self.clock()
        window = self.windows.get(key)
        if window is None or window[1] <= now:
            if amount < 1:
                return 0  # nothing to give back to a window that has ended
            self.windows[key] = [amount, now + expiry]
            if len(self.windows) >= self.sweep_at:
                self._sweep(now)
            return amount
        window[0] += amount
        return int(window[0])

    def clear(self, key: str) -> None:
        self.windows.pop(key, None)

    def get_expiry(self, key: str) -> float:
        window = self.windows.get(key)
        now = self.clock()
        return now if window is None or window[1] <= now else window[1]

    def _sweep(self, now: float) -> None:
        self.windows = {k: w for k, w in self.windows.items() if w[1] > now}
        self.sweep_at = max(1024, 2 * len(self.windows))


class _Counters:
    """Fixed-window counters in one ``limits`` store: this process's memory, or Redis.

    The window algorithm is ``limits``' fixed window, used at the storage level (one
    increment that starts the window's expiry, and its expiry time) so a request costs
    one or two store operations rather than a strategy's three or four.
    """

    def __init__(
        self,
        memory: LocalWindows | None,
        redis: AsyncRedisStorage | None,
        window: int = WINDOW_SECONDS,
    ) -> None:
        self.memory = memory
        self.redis = redis
        self.window = window

    async def count(self, key: str) -> int:
        if self.memory is not None:
            return self.memory.get(key)
        assert self.redis is not None
        return await self.redis.get(key)

    async def hit(
        self, key: str, *, amount: int = 1, expiry: int | None = None
    ) -> tuple[int, float]:
        """Count ``amount`` in the window of ``key`` (a window of ``expiry`` seconds when
        it starts now); the count so far and when the window ends."""
        window = self.window if expiry is None else expiry
        if self.memory is not None:
            return self.memory.incr(key, window, amount), self.memory.get_expiry(key)
        assert self.redis is not None
        count = await self.redis.incr(key, window, amount)
        return count, await self.redis.get_expiry(key)

    async def clear(self, key: str) -> None:
        if self.memory is not None:
            self.memory.clear(key)
            return
        assert self.redis is not None
        await self.redis.clear(key)

    async def admit(
        self, failures_key: str, bucket: str | None, limit: int
    ) -> tuple[int, int, float]:
        """Failures of the address so far; then, unless the address is blocked
        (``limit`` reached) or there is no bucket, one hit on the bucket. Returns the
        failures, the bucket's count (0 when not counted) and when the window that
        decides ends."""
        if self.memory is not None:
            return self.admit_now(failures_key, bucket, limit)
        failures = await self.count(failures_key)
        if failures >= limit or bucket is None:
            return failures, 0, await self.reset_time(failures_key)
        count, reset_at = await self.hit(bucket)
        return failures, count, reset_at

    async def _redis_incr(self, key: str) -> int:
        assert self.redis is not None
        return await self.redis.incr(key, self.window)

    async def count_one(self, key: str) -> int:
        """Count one in ``key``'s window; the count so far (one store operation)."""
        if self.memory is not None:
            return self.memory.incr(key, self.window)
        return await self._redis_incr(key)

    def admit_now(
        self, failures_key: str, bucket: str | None, limit: int
    ) -> tuple[int, int, float]:
        """``admit`` on this process's own counters: no I/O, so no coroutine."""
        memory = self.memory
        assert memory is not None
        failures = memory.get(failures_key)
        if failures >= limit or bucket is None:
            return failures, 0, memory.get_expiry(failures_key)
        return failures, memory.incr(bucket, self.window), memory.get_expiry(bucket)

    async def peek(self, key: str) -> tuple[int, float]:
        """The count so far and when the window ends, spending nothing (one store visit
        on the memory path, two commands on Redis)."""
        return await self.count(key), await self.reset_time(key)

    async def reset_time(self, key: str) -> float:
        if self.memory is not None:
            return self.memory.get_expiry(key)
        assert self.redis is not None
        return await self.redis.get_expiry(key)


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
        self.local = _Counters(LocalWindows(clock), None, window)
        self.shared: _Counters | None = None
        self.redis_url = redis_url
        self.redis_pool: redis.asyncio.ConnectionPool | None = None
        if redis_url is not None:
            plain = redis_url.removeprefix("async+")
            self.redis_pool = redis.asyncio.ConnectionPool.from_url(
                plain,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = AsyncRedisStorage(
                f"async+{plain}",
                implementation="redispy",
                key_prefix="ledgerdesk",
                wrap_exceptions=True,
                connection_pool=self.redis_pool,  # type: ignore[arg-type]  # passed through to redis-py
            )
            self.shared = _Counters(None, storage, window)
        self.shared_down_until = 0.0
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
        if self.shared is None:  # the usual single-process case, without a coroutine hop
            failures, count, reset_at = self.local.admit_now(failures_key, bucket, limit)
        else:
            failures, count, reset_at = await self._run(
                lambda c: c.admit(failures_key, bucket, limit)
            )
        if failures >= limit:
            raise RateLimitExceeded(
                Quota(limit, 0, reset_at),
                self.clock(),
                "Too many failed authentications; retry later.",
            )
        if bucket is None:
            return Quota(limit, limit - failures, reset_at)
        quota = Quota(self.per_key, max(0, self.per_key - count), reset_at)
        if count > self.per_key:
            raise RateLimitExceeded(
                quota, self.clock(), "Too many requests for this API key; retry later."
            )
        if customer is not None:
            counter = self.customer_counter(customer)
            spent = (
                self.local.memory.incr(counter, self.local.window)
                if self.shared is None and self.local.memory is not None
                else await self._run(lambda c: c.count_one(counter))
            )
            if spent > self.per_customer:
                _, until = await self.peek(counter)
                raise RateLimitExceeded(
                    Quota(self.per_customer, 0, until),
                    self.clock(),
                    "Too many requests for this customer's keys together; retry later.",
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
        counter = self.customer_counter(customer)
        await self._run(lambda c: c.count_one(counter))

    async def peek(self, counter: str) -> tuple[int, float]:
        """Any counter's count in its window and when the window ends, spending nothing."""
        return await self._run(lambda c: c.peek(counter))

    async def hit(
        self, counter: str, *, amount: int = 1, expiry: int | None = None
    ) -> tuple[int, float]:
        """Count on any counter: its count so far and when its window ends (a window of
        ``expiry`` seconds, rather than the usual one, when it starts now)."""
        return await self._run(lambda c: c.hit(counter, amount=amount, expiry=expiry))

    async def clear(self, counter: str) -> None:
        """Forget a counter's window."""
        await self._run(lambda c: c.clear(counter))

    async def _run(self, operation: Callable[[_Counters], Awaitable[T]]) -> T:
        shared = self.shared
        if shared is None:
            return await operation(self.local)
        now = time.monotonic()
        if now < self.shared_down_until:
            return await operation(self.local)
        try:
            result = await operation(shared)
        except Exception as exc:
            if self.shared_down_until == 0.0:
                log.warning(
                    "rate-limit store %s is unavailable (%s); counting in this process "
                    "until it answers again",
                    _redacted(self.redis_url),
                    type(exc).__name__,
                )
            self.shared_down_until = now + RETRY_SECONDS
            return await operation(self.local)
        if self.shared_down_until != 0.0:
            log.warning(
                "rate-limit store %s is back; counting there again", _redacted(self.redis_url)
            )
            self.shared_down_until = 0.0
        return result

    async def aclose(self) -> None:
        """Close the connections to Redis (at shutdown)."""
        if self.redis_pool is not None:
            await self.redis_pool.aclose()

    @property
    def using_shared_store(self) -> bool:
        return self.shared is not None and self.shared_down_until == 0.0


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
    def __init__(self, quota: Quota, now: float, message: str) -> None:
        super().__init__(quota.retry_after(now), message)
        self.quota = quota


def _redacted(url: str | None) -> str:
    if url is None:
        return "(none)"
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
