"""Concurrent writes through HTTP: none lost, none doubled, ids and codes distinct."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import Caller, assert_success, call

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


async def test_sixty_concurrent_replies_to_one_ticket_all_land(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = assert_success(
        await call(client, caller, "createTicket", title="Busy", content="start")
    )["ticketId"]
    answers = await asyncio.gather(
        *(
            call(client, caller, "replyTicket", ticketId=ticket_id, content=f"reply {n}")
            for n in range(60)
        )
    )
    for answer in answers:
        assert assert_success(answer) == {"ticketId": ticket_id}
    thread = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    contents = [r["content"] for r in thread["replies"]]
    assert contents[0] == "start"
    assert sorted(contents[1:]) == sorted(f"reply {n}" for n in range(60))


async def test_forty_concurrent_creations_get_distinct_ids_and_codes(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    answers = await asyncio.gather(
        *(call(client, caller, "createTicket", title=f"T{n}", content="C") for n in range(40))
    )
    ids = [assert_success(a)["ticketId"] for a in answers]
    assert len(set(ids)) == 40
    tickets = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert sorted(t["ticketId"] for t in tickets) == sorted(ids)
    assert len({t["ticketCode"] for t in tickets}) == 40
