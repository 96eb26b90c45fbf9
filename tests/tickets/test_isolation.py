"""A key sees only its own user's tickets and attachments: others' look missing (3001)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import Caller, assert_error, assert_success, call

pytestmark = pytest.mark.anyio


@pytest.fixture
async def victim_ticket(client: httpx.AsyncClient, runtime: Runtime) -> tuple[Caller, int, int]:
    victim = make_customer(runtime, "Victim")
    file = {
        "name": "secret.txt",
        "content": base64.b64encode(b"secret").decode(),
        "contentType": "text/plain",
        "size": 6,
    }
    response = await call(
        client, victim, "createTicket", title="Private", content="mine", attachments=[file]
    )
    ticket_id = assert_success(response)["ticketId"]
    thread = assert_success(await call(client, victim, "getTicket", ticketId=ticket_id))
    attachment_id = thread["replies"][0]["attachments"][0]["attachmentId"]
    return victim, ticket_id, attachment_id


WALK: list[tuple[str, dict[str, Any]]] = [
    ("getTicket", {}),
    ("replyTicket", {"content": "let me in"}),
    ("closeTicket", {}),
    ("reopenTicket", {}),
    ("getTicketAttachment", {"attachmentId": "ATTACHMENT"}),
    ("getTicketAttachment", {"attachmentId": "ATTACHMENT", "encoding": "base64"}),
]


@pytest.mark.parametrize(("action", "params"), WALK, ids=[f"{a}-{len(p)}" for a, p in WALK])
async def test_other_accounts_ticket_answers_exactly_like_a_missing_one(
    client: httpx.AsyncClient,
    runtime: Runtime,
    victim_ticket: tuple[Caller, int, int],
    action: str,
    params: dict[str, Any],
) -> None:
    victim, ticket_id, attachment_id = victim_ticket
    intruder = make_customer(runtime, "Intruder")
    missing_id = ticket_id + 10_000

    def resolved(ticket: int) -> dict[str, Any]:
        values = {k: attachment_id if v == "ATTACHMENT" else v for k, v in params.items()}
        return {"ticketId": ticket, **values}

    foreign = await call(client, intruder, action, **resolved(ticket_id))
    missing = await call(client, intruder, action, **resolved(missing_id))
    foreign_body = assert_error(foreign, 3001, 404)
    missing_body = assert_error(missing, 3001, 404)
    assert foreign_body["data"] == missing_body["data"]
    assert foreign_body["msg"] == missing_body["msg"].replace(str(missing_id), str(ticket_id))
    # And nothing changed for the owner.
    thread = assert_success(await call(client, victim, "getTicket", ticketId=ticket_id))
    assert thread["thread"]["status"] == 1
    assert len(thread["replies"]) == 1


async def test_overview_lists_only_own_tickets(
    client: httpx.AsyncClient, runtime: Runtime, victim_ticket: tuple[Caller, int, int]
) -> None:
    intruder = make_customer(runtime, "Intruder")
    assert assert_success(await call(client, intruder, "getTicketOverview")) == {"tickets": []}
    for status in (-1, 0, 1, 2):
        listed = assert_success(await call(client, intruder, "getTicketOverview", status=status))
        assert listed == {"tickets": []}


async def test_own_attachment_id_with_foreign_ticket_id_is_3001(
    client: httpx.AsyncClient, runtime: Runtime, victim_ticket: tuple[Caller, int, int]
) -> None:
    _, victim_ticket_id, _ = victim_ticket
    intruder = make_customer(runtime, "Intruder")
    own = assert_success(await call(client, intruder, "createTicket", title="Mine", content="x"))[
        "ticketId"
    ]
    assert own != victim_ticket_id
    response = await call(
        client, intruder, "getTicketAttachment", ticketId=own, attachmentId=victim_ticket[2]
    )
    assert_error(response, 3001, 404)
