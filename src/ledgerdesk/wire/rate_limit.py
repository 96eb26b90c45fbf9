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
  are counted as a failure *before* they are checked, in the same atomic step as the
  check of the count, and given back once they prove right: forty guesses sent at once
  cannot all pass a limit of ten while the first are still being checked. A key that
  proved right is remembered (by its bucket's name), so the usual request pays nothing.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, TypeVar

import anyio
import redis.asyncio
from limits.aio.storage import RedisStorage as AsyncRedisStorage

from ledgerdesk.accounts.keys import is_well_formed_key
from ledgerdesk.errors import AuthenticationFailed, RateLimited

log = logging.getLogger("ledgerdesk.rate_limit")

WINDOW_SECONDS = 60
RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.25
# Buckets of credentials proven right, remembered per process (then forgotten at once).
PROVEN_BUCKETS = 65536
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
        self, failures_key: str, bucket: str | None, limit: int, *, count_first: bool
    ) -> tuple[int, int, float]:
        """Failures of the address so far (``count_first``: this request counted among
        them already); then, unless the address is blocked (over ``limit``) or there is
        no bucket, one hit on the bucket. Returns the failures before this request, the
        bucket's count (0 when not counted) and when the window that decides ends."""
        if self.memory is not None:
            return self.admit_now(failures_key, bucket, limit, count_first=count_first)
        if count_first:
            failures = await self._redis_incr(failures_key) - 1
        else:
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
        self, failures_key: str, bucket: str | None, limit: int, *, count_first: bool
    ) -> tuple[int, int, float]:
        """``admit`` on this process's own counters: no I/O, so no coroutine."""
        memory = self.memory
        assert memory is not None
        if count_first:
            failures = memory.incr(failures_key, self.window) - 1
        else:
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
        # Buckets of credentials that authenticated in this process (bounded), and of
        # those being checked for the first time right now.
        self.proven: dict[str, None] = {}
        self.checking: dict[str, anyio.Event] = {}

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
        """Whether these credentials authenticated here before (then they are not
        counted as a failure before they are checked)."""
        return bucket is not None and bucket in self.proven

    async def must_count_first(self, bucket: str | None) -> bool:
        """Whether a request with these credentials is counted as a failure before they
        are checked. Requests with the same unproven credentials are checked one at a
        time (the others wait for the first's outcome): a client's first burst with a
        right key is not mistaken for a burst of guesses. ``checked`` must follow."""
        if bucket is None:
            return True
        while (pending := self.checking.get(bucket)) is not None:
            await pending.wait()
        if bucket in self.proven:
            return False
        self.checking[bucket] = anyio.Event()
        return True

    def checked(self, bucket: str | None, *, proven: bool) -> None:
        """The outcome of a check ``must_count_first`` asked for."""
        if bucket is None:
            return
        if proven and bucket not in self.proven:
            if len(self.proven) >= PROVEN_BUCKETS:
                self.proven.clear()
            self.proven[bucket] = None
        pending = self.checking.pop(bucket, None)
        if pending is not None:
            pending.set()

    async def admit(
        self,
        address: str,
        bucket: str | None,
        *,
        count_first: bool,
        customer: int | None = None,
    ) -> Quota:
        """Spend one request of ``bucket``; 4002 when it or the address is over its limit.

        ``count_first``: the request is counted as a failed authentication before its
        credentials are checked (``give_back`` when they prove right). Without a bucket
        (no usable credentials) the address's failure budget is what the answer's
        headers describe. ``customer``: whose key it is; credentials proven right also
        spend one of that customer's requests across all their keys (``per_customer``).
        Unproven ones do not: anyone may name a customer, only a right key spends
        their budget.
        """
        failures_key = self.address_counter(address)
        limit = self.auth_failures
        if self.shared is None:  # the usual single-process case, without a coroutine hop
            failures, count, reset_at = self.local.admit_now(
                failures_key, bucket, limit, count_first=count_first
            )
        else:
            failures, count, reset_at = await self._run(
                lambda c: c.admit(failures_key, bucket, limit, count_first=count_first)
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
            if count_first:  # refused for its key's rate, not for its credentials
                await self.give_back(address)
            raise RateLimitExceeded(
                quota, self.clock(), "Too many requests for this API key; retry later."
            )
        if customer is not None and not count_first:
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
        self, address: str, bucket: str | None, customer: int | None
    ) -> AsyncIterator[Admission]:
        """Admit a request (4002 when over a limit), then account for how its credentials
        fared: credentials not yet proven right here are counted as a failure first and
        given back when they prove right (``Admission.proven``); an
        ``AuthenticationFailed`` leaving the block counts (once) against the address."""
        counted = not self.is_proven(bucket) and await self.must_count_first(bucket)
        try:
            quota = await self.admit(address, bucket, count_first=counted, customer=customer)
        except BaseException:
            if counted:  # refused before anything was checked: the count stands
                self.checked(bucket, proven=False)
            raise
        admitted = Admission(quota, counted)
        try:
            yield admitted
        except AuthenticationFailed:
            admitted.failed = True
            admitted.quota = (
                await self.peek_address(address)
                if counted
                else await self.failed_authentication(address)
            )
            raise
        finally:
            if counted:
                self.checked(bucket, proven=admitted.proven)
                if not admitted.failed:
                    with anyio.CancelScope(shield=True):
                        await self.give_back(address)
                        if admitted.proven and customer is not None:
                            await self.spent_by(customer)

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

    async def give_back(self, address: str) -> None:
        """Undo a failure counted first (``admit(count_first=True)``) that was none."""
        await self.hit(self.address_counter(address), amount=-1)

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


@dataclass
class Admission:
    """One request admitted by ``RateLimits.admission``: the quota its answer states,
    and what became of its credentials (set by the caller)."""

    quota: Quota
    counted_first: bool
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
