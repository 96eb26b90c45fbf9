"""Rate limits (SPEC section 1): per key, per address for failed logins; memory or Redis."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire.rate_limit import RateLimits
from tests.conftest import make_client
from tests.factories import make_customer
from tests.support import Caller, FrozenClock, assert_error, assert_success, call

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("LEDGERDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(
    not redis_available() and not os.environ.get("CI"),
    reason="no Redis server at LEDGERDESK_TEST_REDIS_URL",
)


def limited_app(settings: Settings, clock: FrozenClock, **limits: object) -> LedgerdeskApp:
    return create_app(settings.with_overrides(**limits), clock=clock)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    app = limited_app(settings, clock, rate_limit=3)
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    other = make_customer(runtime, name="Other")
    async with make_client(app, "198.51.100.1") as client:
        for _ in range(3):
            assert_success(await call(client, caller, "getTicketOverview"))
        limited = await call(client, caller, "getTicketOverview")
        assert_error(limited, 4002, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["ratelimit-remaining"] == "0"
        # Another key from the same address is counted on its own.
        assert_success(await call(client, other, "getTicketOverview"))
    runtime.engine.dispose()


async def test_failed_logins_block_the_address_even_for_a_right_key(
    settings: Settings, clock: FrozenClock
) -> None:
    app = limited_app(settings, clock, auth_failure_limit=3)
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    wrong = Caller(caller.user_id, "A" * 20)
    async with (
        make_client(app, "198.51.100.2") as attacker,
        make_client(app, "198.51.100.3") as bystander,
    ):
        for remaining in (2, 1, 0):
            response = await call(attacker, wrong, "getTicketOverview")
            assert_error(response, 2001, 401)
            assert response.headers["ratelimit-remaining"] == str(remaining)
        blocked = await call(attacker, caller, "getTicketOverview")
        assert_error(blocked, 4002, 429)
        assert int(blocked.headers["retry-after"]) >= 1
        # Another address is not affected.
        assert_success(await call(bystander, caller, "getTicketOverview"))
    runtime.engine.dispose()


async def test_ipv6_addresses_of_one_64_share_a_failure_budget(
    settings: Settings, clock: FrozenClock
) -> None:
    app = limited_app(settings, clock, auth_failure_limit=2)
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    wrong = Caller(caller.user_id, "B" * 20)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        async with make_client(app, host) as client:
            assert_error(await call(client, wrong, "getTicketOverview"), 2001, 401)
    async with make_client(app, "2001:db8:1:2::3") as client:
        assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
    runtime.engine.dispose()


def test_buckets_never_hold_the_key_itself() -> None:
    bucket = RateLimits.key_bucket(7, "Xb8kT2abcdefghij0123")
    assert bucket is not None
    assert "Xb8kT2abcdefghij0123" not in bucket
    assert bucket.startswith("key/7/")
    assert RateLimits.key_bucket(7, "not a key") is None
    assert RateLimits.key_bucket(None, "Xb8kT2abcdefghij0123") is None


# -- Redis ---------------------------------------------------------------------------------


@needs_redis
async def test_two_processes_share_counters_through_redis(
    settings: Settings, clock: FrozenClock
) -> None:
    namespace = uuid.uuid4().hex  # a database number is shared; keys are per test run
    url = REDIS_URL
    first = limited_app(settings, clock, rate_limit=4, redis_url=url)
    second = limited_app(settings, clock, rate_limit=4, redis_url=url)
    runtime: Runtime = first.state.runtime
    caller = make_customer(runtime, name=f"Redis {namespace}")
    async with make_client(first, "198.51.100.4") as a, make_client(second, "198.51.100.4") as b:
        for client in (a, b, a, b):
            assert_success(await call(client, caller, "getTicketOverview"))
        assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
        assert first.api.limits.using_shared_store
    for app in (first, second):
        await app.api.limits.aclose()
        app.state.runtime.engine.dispose()


async def test_limits_fail_open_when_redis_is_unreachable(
    settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = limited_app(settings, clock, rate_limit=2, redis_url=url)
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.rate_limit"):
        async with make_client(app, "198.51.100.5") as client:
            assert_success(await call(client, caller, "getTicketOverview"))
            assert_success(await call(client, caller, "getTicketOverview"))
            # Still limited: by this process's own counters.
            assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1
    assert not app.api.limits.using_shared_store
    await app.api.limits.aclose()
    runtime.engine.dispose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    yield f"redis://127.0.0.1:{port}/0", processes
    for process in processes:
        process.kill()
        process.wait()


def start_redis(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
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
    processes.append(process)
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


async def test_limits_return_to_redis_when_it_answers_again(
    settings: Settings,
    clock: FrozenClock,
    own_redis: tuple[str, list[subprocess.Popen[bytes]]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, processes = own_redis
    monkeypatch.setattr("ledgerdesk.wire.rate_limit.RETRY_SECONDS", 0.0)
    app = limited_app(settings, clock, rate_limit=100, redis_url=url)
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.rate_limit"):
        async with make_client(app, "198.51.100.6") as client:
            assert_success(await call(client, caller, "getTicketOverview"))  # Redis is down
            assert not app.api.limits.using_shared_store
            start_redis(url, processes)
            response = await call(client, caller, "getTicketOverview")
            assert_success(response)
            assert app.api.limits.using_shared_store
            # Counted in Redis from here on: the fresh server has seen one request.
            assert response.headers["ratelimit-remaining"] == "99"
            processes[0].kill()
            processes[0].wait()
            assert_success(await call(client, caller, "getTicketOverview"))
            assert not app.api.limits.using_shared_store
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 2
    assert sum("is back" in m for m in messages) == 1
    await app.api.limits.aclose()
    runtime.engine.dispose()
