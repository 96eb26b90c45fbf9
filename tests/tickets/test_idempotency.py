"""Idempotency-Key on createTicket and replyTicket (SPEC section 1)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from sqlalchemy import func, select

from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Reply, Ticket
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import (
    ENDPOINT,
    Caller,
    FrozenClock,
    assert_error,
    assert_success,
    error_properties,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


def count(runtime: Runtime, model: type[Ticket] | type[Reply]) -> int:
    with unit_of_work(runtime.sessions, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def post(
    client: httpx.AsyncClient,
    caller: Caller,
    key: str,
    action: str = "createTicket",
    **params: object,
) -> httpx.Response:
    body = caller.body(action, **({"title": "T", "content": "C"} | params))
    return await client.post(ENDPOINT, json=body, headers={"Idempotency-Key": key})


async def test_repeat_returns_the_first_answer_and_changes_nothing(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    first = await post(client, caller, "order-1")
    second = await post(client, caller, "order-1")
    assert assert_success(first) == assert_success(second)
    assert first.content == second.content
    assert (count(runtime, Ticket), count(runtime, Reply)) == (1, 1)


async def test_same_key_with_a_different_request_is_3003(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    assert_success(await post(client, caller, "order-1"))
    assert_error(await post(client, caller, "order-1", title="Other"), 3003, 409)
    assert count(runtime, Ticket) == 1


async def test_credentials_are_not_part_of_the_request(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    first = assert_success(await post(client, caller, "k"))
    body = {"action": "createTicket", "title": "T", "content": "C"}
    again = await client.post(
        ENDPOINT,
        json=body,
        headers={"Idempotency-Key": "k"},
        auth=(f"K{caller.user_id}", caller.api_key),
    )
    assert assert_success(again) == first


async def test_keys_are_per_account(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    other = make_customer(runtime, "Other")
    mine = assert_success(await post(client, caller, "shared-key"))
    theirs = assert_success(await post(client, other, "shared-key"))
    assert mine != theirs
    assert count(runtime, Ticket) == 2


async def test_keys_expire_after_24_hours(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime, clock: FrozenClock
) -> None:
    first = assert_success(await post(client, caller, "daily"))
    clock.advance(24 * 3600 - 1)
    assert assert_success(await post(client, caller, "daily")) == first
    clock.advance(1)
    assert assert_success(await post(client, caller, "daily")) != first
    assert count(runtime, Ticket) == 2


async def test_reply_with_files_is_idempotent(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    ticket_id = assert_success(await post(client, caller, "create"))["ticketId"]
    file = {
        "name": "a",
        "content": base64.b64encode(b"abc").decode(),
        "contentType": "text/plain",
        "size": 3,
    }
    for _ in range(3):
        assert_success(
            await post(
                client,
                caller,
                "reply",
                "replyTicket",
                ticketId=ticket_id,
                content="x",
                attachments=[file],
            )
        )
    assert count(runtime, Reply) == 2
    other_file = {**file, "content": base64.b64encode(b"abd").decode()}
    response = await post(
        client,
        caller,
        "reply",
        "replyTicket",
        ticketId=ticket_id,
        content="x",
        attachments=[other_file],
    )
    assert_error(response, 3003, 409)


async def test_multipart_repeats_compare_file_contents(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    ticket_id = assert_success(await post(client, caller, "create"))["ticketId"]
    fields = {
        "userId": str(caller.user_id),
        "apiKey": caller.api_key,
        "action": "replyTicket",
        "ticketId": str(ticket_id),
        "content": "see file",
    }

    async def send(data: bytes) -> httpx.Response:
        return await client.post(
            ENDPOINT,
            data=fields,
            files={"attachment": ("f.bin", data, "application/octet-stream")},
            headers={"Idempotency-Key": "multi"},
        )

    assert_success(await send(b"one"))
    assert_success(await send(b"one"))
    assert_error(await send(b"two"), 3003, 409)
    assert count(runtime, Reply) == 2


async def test_failed_first_attempt_is_not_remembered(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    assert_error(await post(client, caller, "retry-me", title=""), 1003, 400)
    assert_success(await post(client, caller, "retry-me"))
    assert count(runtime, Ticket) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "ünïcode"])
async def test_malformed_keys_are_1003(client: httpx.AsyncClient, caller: Caller, key: str) -> None:
    response = await client.post(
        ENDPOINT,
        json=caller.body("createTicket", title="T", content="C"),
        headers={"Idempotency-Key": key.encode("utf-8")},
    )
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["Idempotency-Key"]


async def test_concurrent_repeats_create_one_ticket(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    answers = await asyncio.gather(*(post(client, caller, "race") for _ in range(8)))
    bodies = {assert_success(a)["ticketId"] for a in answers}
    assert len(bodies) == 1
    assert count(runtime, Ticket) == 1
