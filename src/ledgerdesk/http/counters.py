"""Fixed-window counters: in this process's memory, or in Redis shared by every process.

The API's rate limits (wire.rate_limit) and the sign-in throttle (web.throttle) are
built from these. Counters live in this process (``LocalWindows``), or in Redis through
the ``limits`` library's Redis store (an atomic increment that starts the window's
expiry) when several processes or machines share the load (``LEDGERDESK_REDIS_URL``).
If Redis stops answering, the counters fail open to this process's own (logged once)
and go back to Redis when it answers again, checked at most every ``RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio
from limits.aio.storage import RedisStorage as AsyncRedisStorage

log = logging.getLogger("ledgerdesk.rate_limit")

WINDOW_SECONDS = 60
RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.25
T = TypeVar("T")


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


class WindowStore:
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


class Counters:
    """Named fixed-window counters, shared through Redis when there is one."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        window: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.local = WindowStore(LocalWindows(clock), None, window)
        self.shared: WindowStore | None = None
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
            self.shared = WindowStore(None, storage, window)
        self.shared_down_until = 0.0

    async def admit(self, gate: str, bucket: str | None, limit: int) -> tuple[int, int, float]:
        """``WindowStore.admit``: the gate's count, then one hit on the bucket unless the
        gate is at ``limit`` (or there is no bucket)."""
        if self.shared is None:  # the usual single-process case, without a coroutine hop
            return self.local.admit_now(gate, bucket, limit)
        return await self._run(lambda c: c.admit(gate, bucket, limit))

    async def count_one(self, counter: str) -> int:
        """Count one; the count so far."""
        memory = self.local.memory
        if self.shared is None and memory is not None:
            return memory.incr(counter, self.local.window)
        return await self._run(lambda c: c.count_one(counter))

    async def peek(self, counter: str) -> tuple[int, float]:
        """A counter's count in its window and when the window ends, spending nothing."""
        return await self._run(lambda c: c.peek(counter))

    async def hit(
        self, counter: str, *, amount: int = 1, expiry: int | None = None
    ) -> tuple[int, float]:
        """Count on a counter: its count so far and when its window ends (a window of
        ``expiry`` seconds, rather than the usual one, when it starts now)."""
        return await self._run(lambda c: c.hit(counter, amount=amount, expiry=expiry))

    async def clear(self, counter: str) -> None:
        """Forget a counter's window."""
        await self._run(lambda c: c.clear(counter))

    async def _run(self, operation: Callable[[WindowStore], Awaitable[T]]) -> T:
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


def _redacted(url: str | None) -> str:
    if url is None:
        return "(none)"
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
