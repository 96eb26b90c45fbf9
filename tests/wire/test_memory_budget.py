"""The memory budget for request bodies: bounded, first come first served, 503 when full."""

from __future__ import annotations

import anyio
import httpx
import pytest

from ledgerdesk.app import create_app
from ledgerdesk.config import Settings
from ledgerdesk.errors import ServerBusy
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire.memory_budget import SMALL_BODY, MemoryBudget, Reservation
from tests.conftest import make_client
from tests.factories import make_customer
from tests.support import ENDPOINT, FrozenClock, assert_error, assert_success

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def test_a_reservation_that_fits_is_taken_at_once() -> None:
    budget = MemoryBudget(10 * MIB)
    assert await budget.reserve(4 * MIB) == 4 * MIB
    assert budget.free == 6 * MIB
    budget.release(4 * MIB)
    assert budget.free == 10 * MIB


async def test_a_body_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(10 * MIB)
    assert await budget.reserve(50 * MIB) == 10 * MIB
    assert budget.free == 0


async def test_a_waiting_request_gets_the_bytes_when_they_are_released() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=5)
    await budget.reserve(8 * MIB)
    got: list[int] = []

    async def waiter() -> None:
        got.append(await budget.reserve(5 * MIB))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(waiter)
        await anyio.sleep(0.05)
        assert got == []
        budget.release(8 * MIB)
    assert got == [5 * MIB]
    assert budget.free == 5 * MIB


async def test_a_request_that_waits_too_long_is_503_and_gives_its_place_up() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=0.05)
    await budget.reserve(8 * MIB)
    with pytest.raises(ServerBusy) as raised:
        await budget.reserve(5 * MIB)
    assert raised.value.http_status == 503
    assert raised.value.headers()["Retry-After"] == "2"
    # Nobody is left queued: a small request still fits at once.
    assert await budget.reserve(2 * MIB) == 2 * MIB


async def test_small_pieces_of_one_body_add_up() -> None:
    """A chunked body is counted once its pieces together pass the small-body size."""
    budget = MemoryBudget(4 * MIB)
    reservation = Reservation(budget)
    await reservation.take(SMALL_BODY // 2)
    assert reservation.held == 0  # a small body is not counted
    for _ in range(4):
        await reservation.take(SMALL_BODY // 2)
    assert reservation.held == reservation.asked == SMALL_BODY * 5 // 2
    reservation.release()
    assert budget.free == 4 * MIB


async def test_one_request_holds_at_most_the_whole_budget() -> None:
    budget = MemoryBudget(4 * MIB)
    reservation = Reservation(budget)
    for _ in range(10):
        await reservation.take(MIB)  # a chunked body, piece by piece
    assert reservation.held == 4 * MIB
    reservation.release()
    assert budget.free == 4 * MIB


async def test_bodies_over_the_budget_wait_then_get_503_with_retry_after(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings.with_overrides(body_memory_bytes=MIB), clock=clock)
    app.api.memory.wait_seconds = 0.2
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    release = anyio.Event()

    async def slow_body() -> object:
        yield b'{"userId": %d, "apiKey": "%s", "action": "getTicketOverview", "pad": "' % (
            caller.user_id,
            caller.api_key.encode(),
        )
        await release.wait()
        yield b" " * 1000 + b'"}'

    async with make_client(app, "198.51.100.9") as client:
        results: dict[str, httpx.Response] = {}

        async def holder() -> None:
            results["holder"] = await client.post(
                ENDPOINT,
                content=slow_body(),
                headers={"Content-Type": "application/json", "Content-Length": str(600_000)},
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holder)
            await anyio.sleep(0.05)
            # The first body holds 2 x 600 kB of a 1 MiB budget: this one cannot fit.
            busy = await client.post(
                ENDPOINT,
                json={
                    "userId": caller.user_id,
                    "apiKey": caller.api_key,
                    "action": "getTicketOverview",
                    "pad": "x" * 300_000,
                },
            )
            release.set()
            tasks.cancel_scope.cancel()
        assert_error(busy, 5000, 503)
        assert busy.headers["retry-after"] == "2"
        # Once the first request is gone, the budget is whole again.
        assert app.api.memory.free == MIB
        small = await client.post(
            ENDPOINT,
            json={
                "userId": caller.user_id,
                "apiKey": caller.api_key,
                "action": "getTicketOverview",
            },
        )
        assert_success(small)
    runtime.engine.dispose()
