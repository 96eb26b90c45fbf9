"""The memory budget for request bodies: bounded, first come first served, 503 when full."""

from __future__ import annotations

import contextlib

import anyio
import pytest

from ledgerdesk.app import create_app
from ledgerdesk.config import Settings
from ledgerdesk.errors import ServerBusy
from ledgerdesk.http.memory_budget import SMALL_BODY, MemoryBudget, Reservation
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.factories import make_customer
from tests.support import ENDPOINT, FrozenClock, assert_error, assert_success

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def holder(budget: MemoryBudget, client: str = "198.51.100.1") -> Reservation:
    return Reservation(budget, client)


async def test_a_reservation_that_fits_is_taken_at_once() -> None:
    budget = MemoryBudget(10 * MIB)
    assert await budget.reserve(4 * MIB, holder(budget)) == 4 * MIB
    assert budget.free == 6 * MIB
    budget.release(4 * MIB, "198.51.100.1")
    assert budget.free == 10 * MIB
    assert budget.held_by == {}


async def test_a_body_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(10 * MIB)
    assert await budget.reserve(50 * MIB, holder(budget)) == 10 * MIB
    assert budget.free == 0


async def test_a_waiting_request_gets_the_bytes_when_they_are_released() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=5)
    await budget.reserve(8 * MIB, holder(budget))
    got: list[int] = []

    async def waiter() -> None:
        got.append(await budget.reserve(5 * MIB, holder(budget, "198.51.100.2")))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(waiter)
        await anyio.sleep(0.05)
        assert got == []
        budget.release(8 * MIB, "198.51.100.1")
    assert got == [5 * MIB]
    assert budget.free == 5 * MIB
    assert budget.held_by == {"198.51.100.2": 5 * MIB}


async def test_a_request_that_waits_too_long_is_503_and_gives_its_place_up() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=0.05)
    await budget.reserve(8 * MIB, holder(budget))
    with pytest.raises(ServerBusy) as raised:
        await budget.reserve(5 * MIB, holder(budget, "198.51.100.2"))
    assert raised.value.http_status == 503
    assert raised.value.headers()["Retry-After"] == "2"
    # Nobody is left queued: a small request still fits at once.
    assert await budget.reserve(2 * MIB, holder(budget, "198.51.100.2")) == 2 * MIB


async def test_small_pieces_of_one_body_add_up() -> None:
    """A chunked body is counted once its pieces together pass the small-body size."""
    budget = MemoryBudget(4 * MIB)
    reservation = holder(budget)
    await reservation.take(SMALL_BODY // 2)
    assert reservation.held == 0  # a small body is not counted
    for _ in range(4):
        await reservation.take(SMALL_BODY // 2)
    assert reservation.held == reservation.asked == SMALL_BODY * 5 // 2
    reservation.release()
    assert budget.free == 4 * MIB


async def test_one_request_holds_at_most_the_whole_budget() -> None:
    budget = MemoryBudget(4 * MIB)
    reservation = holder(budget)
    for _ in range(10):
        await reservation.take(MIB)  # a chunked body, piece by piece
    assert reservation.held == 4 * MIB
    reservation.release()
    assert budget.free == 4 * MIB


# -- fair between clients (issue: one slow body starved every upload) ------------------


async def test_an_address_over_its_share_gives_back_its_arriving_body_to_a_waiting_one() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=2, reclaim_after=0.05)
    hog = holder(budget, "198.51.100.66")
    await hog.take(9 * MIB)
    never = anyio.Event()
    outcome: list[object] = []

    async def hog_body() -> None:
        try:
            await hog.arriving(never.wait)  # a body still arriving, one byte a minute
        except ServerBusy as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hog_body)
        await anyio.sleep(0.01)
        other = holder(budget, "198.51.100.7")
        await other.take(4 * MIB)  # waits 50 ms, then the hog gives back
    assert other.held == 4 * MIB
    assert hog.revoked
    assert hog.held == 0
    assert isinstance(outcome[0], ServerBusy)
    assert outcome[0].http_status == 503
    assert budget.held_by == {"198.51.100.7": 4 * MIB}
    with pytest.raises(ServerBusy):
        await hog.take(1)  # its reader stops at the next piece too


async def test_an_address_alone_may_use_the_whole_budget() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=0.2, reclaim_after=0.05)
    first, second = holder(budget), holder(budget)
    await first.take(6 * MIB)
    await second.take(4 * MIB)
    assert budget.free == 0
    # The same address waiting for more does not make it give back to itself.
    third = holder(budget)
    with pytest.raises(ServerBusy):
        await third.take(MIB)
    assert not first.revoked
    assert not second.revoked


async def test_a_body_already_read_whole_is_never_cut_off() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=0.2, reclaim_after=0.05)
    hog = holder(budget, "198.51.100.66")
    await hog.take(9 * MIB)  # read whole, being answered: not arriving
    with pytest.raises(ServerBusy):
        await holder(budget, "198.51.100.7").take(4 * MIB)
    assert not hog.revoked
    assert hog.held == 9 * MIB


async def test_a_declared_length_costs_nothing_until_the_bytes_arrive(
    settings: Settings, clock: FrozenClock
) -> None:
    """A body declaring 600 kB of a 1 MiB budget and sending a few bytes leaves room for
    another 600 kB body (the whole declared length used to be reserved at once)."""
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

        async def holder_request() -> None:
            await client.post(
                ENDPOINT,
                content=slow_body(),
                headers={"Content-Type": "application/json", "Content-Length": str(600_000)},
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holder_request)
            await anyio.sleep(0.05)
            other = await client.post(
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
        assert_success(other)
        assert app.api.memory.free == MIB
    runtime.engine.dispose()


async def test_bodies_over_the_budget_wait_then_get_503_with_retry_after(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings.with_overrides(body_memory_bytes=MIB), clock=clock)
    app.api.memory.wait_seconds = 0.2
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    # Another request of the same address holds 900 kB of the 1 MiB budget while it is
    # being answered (read whole, so it is not cut off).
    reservation = Reservation(app.api.memory, "198.51.100.9")
    await reservation.take(900 * 1024)
    async with make_client(app, "198.51.100.9") as client:
        busy = await client.post(
            ENDPOINT,
            json={
                "userId": caller.user_id,
                "apiKey": caller.api_key,
                "action": "getTicketOverview",
                "pad": "x" * 300_000,
            },
        )
        assert_error(busy, 5000, 503)
        assert busy.headers["retry-after"] == "2"
        reservation.release()
        assert app.api.memory.free == MIB
        assert_success(
            await client.post(
                ENDPOINT,
                json={
                    "userId": caller.user_id,
                    "apiKey": caller.api_key,
                    "action": "getTicketOverview",
                    "pad": "x" * 300_000,
                },
            )
        )
    runtime.engine.dispose()


async def test_large_bodies_arriving_together_all_get_through(
    settings: Settings, clock: FrozenClock
) -> None:
    """Each reserving only what had arrived, five bodies of 1 MiB filled a 4 MiB budget
    with parts and waited for the rest, none able to finish: 503s for all but luck."""
    app = create_app(settings.with_overrides(body_memory_bytes=4 * MIB), clock=clock)
    app.api.memory.wait_seconds = 3
    runtime: Runtime = app.state.runtime
    caller = make_customer(runtime)
    body = (
        b'{"userId": %d, "apiKey": "%s", "action": "getTicketOverview", "pad": "'
        % (caller.user_id, caller.api_key.encode())
        + b"x" * MIB
        + b'"}'
    )

    async def pieces() -> object:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]
            await anyio.sleep(0.001)

    statuses: list[int] = []

    async def send() -> None:
        answer = await client.post(
            ENDPOINT,
            content=pieces(),
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
        )
        statuses.append(answer.status_code)

    async with make_client(app, "198.51.100.9") as client, anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(send)
    assert statuses == [200] * 5
    assert app.api.memory.free == 4 * MIB
    runtime.engine.dispose()


async def test_the_waiter_that_made_a_hog_give_back_is_served_first() -> None:
    budget = MemoryBudget(10 * MIB, wait_seconds=2, reclaim_after=0.05)
    hog = holder(budget, "198.51.100.66")
    await hog.take(9 * MIB)
    queued_hog = holder(budget, "198.51.100.66")
    never = anyio.Event()
    got: list[str] = []

    async def hog_body() -> None:
        with contextlib.suppress(ServerBusy):
            await hog.arriving(never.wait)

    async def another_hog_body() -> None:
        with contextlib.suppress(ServerBusy):
            await queued_hog.take(8 * MIB)
            got.append("hog")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hog_body)
        tasks.start_soon(another_hog_body)  # queued first, from the hog's own address
        await anyio.sleep(0.01)
        other = holder(budget, "198.51.100.7")
        await other.take(8 * MIB)
        got.append("other")
        other.release()
    assert got[0] == "other"
