"""PostgreSQL reads on the event loop (db.loop_reads): the bridge and the pool."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.exc import MissingGreenlet

from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.db.loop_reads import run_bridged, wait
from ledgerdesk.execution import PostgresExecution, SqliteExecution
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import call

pytestmark = pytest.mark.anyio


async def _twice(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


async def test_synchronous_code_waits_for_coroutines_on_the_loop() -> None:
    def work(start: int) -> list[int]:
        return [wait(_twice(start)), wait(_twice(start + 1))]

    assert await run_bridged(work, 5) == [10, 12]


async def test_errors_travel_both_ways() -> None:
    async def broken() -> None:
        raise KeyError("from the coroutine")

    def work() -> str:
        try:
            wait(broken())
        except KeyError as exc:
            raise ValueError(f"seen: {exc.args[0]}") from exc
        return "not reached"

    with pytest.raises(ValueError, match="seen: from the coroutine"):
        await run_bridged(work)


async def test_requests_interleave_while_one_waits() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    def slow() -> None:
        order.append("slow waits")
        wait(gate.wait())
        order.append("slow done")

    def fast() -> None:
        order.append("fast")
        gate.set()

    await asyncio.gather(run_bridged(slow), run_bridged(fast))
    assert order == ["slow waits", "fast", "slow done"]


def test_wait_outside_the_bridge_is_refused() -> None:
    coroutine = _twice(1)
    with pytest.raises(MissingGreenlet):
        wait(coroutine)
    coroutine.close()


async def test_reads_take_no_worker_thread(
    app: LedgerdeskApp,
    runtime: Runtime,
    client: httpx.AsyncClient,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite reads run on the pinned reader, PostgreSQL reads through asyncpg: both on
    the event loop."""
    caller = make_customer(runtime)
    execution = app.api.execution
    hops = execution.thread_hops
    for action in ("getTicketOverview", "getInvoiceIds", "getTicket"):
        answer = await call(client, caller, action, ticketId=1)
        assert answer.json()["status"] == ("Success" if action != "getTicket" else "Error")
    assert execution.thread_hops == hops
    expected = SqliteExecution if backend == "sqlite" else PostgresExecution
    assert isinstance(execution, expected)
    await app.api.aclose()  # closes the pool; the next read opens a new one
    assert (await call(client, caller, "getTicketOverview")).json()["status"] == "Success"
