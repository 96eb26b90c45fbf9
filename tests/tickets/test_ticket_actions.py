"""The seven ticket actions through HTTP: fields, orderings, the status machine."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ledgerdesk.runtime import Runtime
from tests.factories import force_close, make_customer, make_ticket, make_user, staff_reply
from tests.support import (
    ENDPOINT,
    Caller,
    FrozenClock,
    assert_error,
    assert_success,
    call,
    error_properties,
    json_attachment,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime, "John Smith")


async def create(client: httpx.AsyncClient, caller: Caller, **params: Any) -> int:
    params.setdefault("title", "Server unreachable")
    params.setdefault("content", "It stopped answering at 07:12.")
    data = assert_success(await call(client, caller, "createTicket", **params))
    ticket_id: int = data["ticketId"]
    return ticket_id


async def thread(client: httpx.AsyncClient, caller: Caller, ticket_id: int) -> dict[str, Any]:
    return assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))


# -- createTicket and getTicketOverview ------------------------------------------------


async def test_created_ticket_shows_in_the_overview_with_every_field(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    ticket_id = await create(
        client, caller, title="Api created ticket", reference="Client ref. 123456-abc"
    )
    (ticket,) = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    code = ticket.pop("ticketCode")
    assert isinstance(code, int)
    assert 10_000_000 <= code <= 99_999_999
    assert ticket == {
        "userId": caller.user_id,
        "ticketId": ticket_id,
        "created": clock.timestamp(),
        "title": "Api created ticket",
        "reference": "Client ref. 123456-abc",
        "status": 1,
        "statusUpdateTime": clock.timestamp(),
        "timeLastUpdated": clock.timestamp(),
        "priorityId": 2,
    }


async def test_ticket_codes_are_random_not_derived_from_ids(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    for _ in range(20):
        await create(client, caller)
    tickets = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    codes = [t["ticketCode"] for t in sorted(tickets, key=lambda t: t["ticketId"])]
    assert len(set(codes)) == 20
    # Codes that followed the ids would rise (or fall) with them; 20 random ones
    # come out in order once in 10**18 runs.
    assert codes != sorted(codes)
    assert codes != sorted(codes, reverse=True)


async def test_priority_and_reference_are_kept(client: httpx.AsyncClient, caller: Caller) -> None:
    await create(client, caller, priorityId="4", reference="")
    (ticket,) = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert (ticket["priorityId"], ticket["reference"]) == (4, "")


async def test_overview_is_newest_first_then_highest_id(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    first = await create(client, caller)
    clock.advance(10)
    second = await create(client, caller)
    third = await create(client, caller)  # same second as `second`
    tickets = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert [t["ticketId"] for t in tickets] == [third, second, first]


@pytest.mark.parametrize(
    ("status", "expected"), [(-1, ["c", "b", "a"]), (0, ["b"]), (1, ["c"]), (2, ["a"])]
)
async def test_overview_filters_by_status(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, status: int, expected: list[str]
) -> None:
    ids = {name: await create(client, caller) for name in "abc"}
    force_close(runtime, ids["a"])
    assert_success(await call(client, caller, "closeTicket", ticketId=ids["b"]))
    tickets = assert_success(await call(client, caller, "getTicketOverview", status=status))[
        "tickets"
    ]
    assert [t["ticketId"] for t in tickets] == [ids[name] for name in expected]


@pytest.mark.parametrize("status", [3, -2, "open", 1.0])
async def test_overview_status_out_of_range_is_1003(
    client: httpx.AsyncClient, caller: Caller, status: object
) -> None:
    response = await call(client, caller, "getTicketOverview", status=status)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["status"]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"title": None, "content": None}, ["title", "content"]),
        ({"title": ""}, ["title"]),
        ({"title": "   "}, ["title"]),
        ({"title": "x" * 256}, ["title"]),
        ({"content": "x" * 65536}, ["content"]),
        ({"content": "nul\x00byte"}, ["content"]),
        ({"reference": "r" * 65}, ["reference"]),
        ({"reference": 12}, ["reference"]),
        ({"priorityId": 0}, ["priorityId"]),
        ({"priorityId": 5}, ["priorityId"]),
        ({"priorityId": "high"}, ["priorityId"]),
        ({"attachments": "file.txt"}, ["attachments"]),
        (
            {"attachments": [{}]},
            [
                "attachments[0].name",
                "attachments[0].content",
                "attachments[0].contentType",
                "attachments[0].size",
            ],
        ),
    ],
)
async def test_create_ticket_names_every_bad_parameter(
    client: httpx.AsyncClient, caller: Caller, params: dict[str, Any], bad: list[str]
) -> None:
    body = {"title": "T", "content": "C", **params}
    body = {k: v for k, v in body.items() if v is not None}
    response = await call(client, caller, "createTicket", **body)
    assert_error(response, 1003, 400)
    assert error_properties(response) == bad


async def test_limits_are_inclusive(client: httpx.AsyncClient, caller: Caller) -> None:
    ticket_id = await create(
        client, caller, title="é" * 255, content="x" * 65535, reference="r" * 64
    )
    (ticket,) = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert ticket["ticketId"] == ticket_id
    assert ticket["title"] == "é" * 255


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"content": "not base64!"}, "base64"),
        ({"content": "YWJj"}, "size"),  # "abc" is 3 bytes, declared 5
        ({"contentType": "image"}, "media type"),
        ({"contentType": "text/plain\r\nX-Evil: 1"}, "media type"),
        ({"name": "n" * 201}, "200"),
        ({"size": -1}, "must be at least 0"),
    ],
)
async def test_bad_attachments_are_1003(
    client: httpx.AsyncClient, caller: Caller, override: dict[str, Any], needle: str
) -> None:
    bad = {**json_attachment("a.txt", b"hello", "text/plain"), **override}
    response = await call(client, caller, "createTicket", title="T", content="C", attachments=[bad])
    body = assert_error(response, 1003, 400)
    assert needle in str(body["data"]["errors"])
    assert all(e["property"].startswith("attachments[0]") for e in body["data"]["errors"])


async def test_more_than_ten_attachments_is_1003(client: httpx.AsyncClient, caller: Caller) -> None:
    files = [json_attachment(f"{i}.txt", b"x") for i in range(11)]
    response = await call(client, caller, "createTicket", title="T", content="C", attachments=files)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["attachments"]


# -- getTicket ---------------------------------------------------------------------------


async def test_get_ticket_returns_thread_and_opening_reply(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    ticket_id = await create(
        client,
        caller,
        title="Api created ticket",
        content="This is a ticket with a question",
        attachments=[json_attachment("image.png", data, "image/png")],
    )
    result = await thread(client, caller, ticket_id)
    assert result["thread"]["ticketId"] == ticket_id
    assert set(result["thread"]) == {
        "userId",
        "ticketId",
        "ticketCode",
        "created",
        "title",
        "reference",
        "status",
        "statusUpdateTime",
        "timeLastUpdated",
        "priorityId",
    }
    (reply,) = result["replies"]
    (info,) = reply.pop("attachments")
    assert reply == {
        "by": "John Smith",
        "userId": caller.user_id,
        "created": clock.timestamp(),
        "title": "Api created ticket",
        "content": "This is a ticket with a question",
    }
    assert info == {
        "attachmentId": info["attachmentId"],
        "name": "image.png",
        "contentType": "image/png",
        "size": len(data),
    }


async def test_replies_come_oldest_first_with_staff_names(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, clock: FrozenClock
) -> None:
    staff_id = make_user(runtime, name="Sam Support", staff=True)
    ticket_id = await create(client, caller, content="first")
    clock.advance(5)
    staff_reply(runtime, ticket_id, staff_id, "second")
    clock.advance(5)
    assert_success(await call(client, caller, "replyTicket", ticketId=ticket_id, content="third"))
    replies = (await thread(client, caller, ticket_id))["replies"]
    assert [(r["content"], r["by"], r["userId"]) for r in replies] == [
        ("first", "John Smith", caller.user_id),
        ("second", "Sam Support", staff_id),
        ("third", "John Smith", caller.user_id),
    ]
    assert replies[1]["created"] - replies[0]["created"] == 5


async def test_get_ticket_of_missing_ticket_is_3001(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    assert_error(await call(client, caller, "getTicket", ticketId=987654), 3001, 404)


# -- replyTicket and the status machine --------------------------------------------------


async def test_reply_updates_time_last_updated_only(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    ticket_id = await create(client, caller)
    created = clock.timestamp()
    clock.advance(100)
    data = assert_success(
        await call(client, caller, "replyTicket", ticketId=str(ticket_id), content="More info")
    )
    assert data == {"ticketId": ticket_id}
    summary = (await thread(client, caller, ticket_id))["thread"]
    assert (summary["status"], summary["statusUpdateTime"], summary["timeLastUpdated"]) == (
        1,
        created,
        created + 100,
    )


async def test_reply_to_a_closed_ticket_reopens_it(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    ticket_id = await create(client, caller)
    clock.advance(10)
    assert_success(await call(client, caller, "closeTicket", ticketId=ticket_id))
    clock.advance(10)
    assert_success(await call(client, caller, "replyTicket", ticketId=ticket_id, content="again"))
    summary = (await thread(client, caller, ticket_id))["thread"]
    assert summary["status"] == 1
    assert summary["statusUpdateTime"] == summary["timeLastUpdated"] == clock.timestamp()


async def test_reply_to_a_forcibly_closed_ticket_is_3002_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    ticket_id = await create(client, caller)
    force_close(runtime, ticket_id)
    response = await call(
        client,
        caller,
        "replyTicket",
        ticketId=ticket_id,
        content="hello?",
        attachments=[json_attachment("a.txt", b"data")],
    )
    assert_error(response, 3002, 409)
    result = await thread(client, caller, ticket_id)
    assert len(result["replies"]) == 1
    assert result["thread"]["status"] == 2


async def test_reply_needs_content(client: httpx.AsyncClient, caller: Caller) -> None:
    ticket_id = await create(client, caller)
    response = await call(client, caller, "replyTicket", ticketId=ticket_id)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["content"]


async def test_close_and_reopen_answer_the_i3d_messages(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = await create(client, caller)
    closed = assert_success(await call(client, caller, "closeTicket", ticketId=ticket_id))
    assert closed == {"ticket": f"Ticket thread {ticket_id} has been closed"}
    reopened = assert_success(await call(client, caller, "reopenTicket", ticketId=ticket_id))
    assert reopened == {"ticket": f"Ticket thread {ticket_id} has been reopened"}


async def test_real_status_changes_set_status_update_time(
    client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    ticket_id = await create(client, caller)
    clock.advance(10)
    await call(client, caller, "closeTicket", ticketId=ticket_id)
    closed_at = clock.timestamp()
    clock.advance(10)
    await call(client, caller, "closeTicket", ticketId=ticket_id)  # already closed: no change
    summary = (await thread(client, caller, ticket_id))["thread"]
    assert (summary["status"], summary["statusUpdateTime"]) == (0, closed_at)
    clock.advance(10)
    await call(client, caller, "reopenTicket", ticketId=ticket_id)
    reopened_at = clock.timestamp()
    clock.advance(10)
    await call(client, caller, "reopenTicket", ticketId=ticket_id)  # already open: no change
    summary = (await thread(client, caller, ticket_id))["thread"]
    assert (summary["status"], summary["statusUpdateTime"]) == (1, reopened_at)


async def test_forcibly_closed_cannot_be_reopened_but_closing_it_succeeds(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, clock: FrozenClock
) -> None:
    ticket_id = await create(client, caller)
    clock.advance(10)
    force_close(runtime, ticket_id)
    forced_at = clock.timestamp()
    clock.advance(10)
    assert_error(await call(client, caller, "reopenTicket", ticketId=ticket_id), 3002, 409)
    assert_success(await call(client, caller, "closeTicket", ticketId=ticket_id))
    summary = (await thread(client, caller, ticket_id))["thread"]
    assert (summary["status"], summary["statusUpdateTime"]) == (2, forced_at)


async def test_staff_reply_does_not_change_the_status(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    staff_id = make_user(runtime, name="Sam", staff=True)
    ticket_id = await create(client, caller)
    await call(client, caller, "closeTicket", ticketId=ticket_id)
    staff_reply(runtime, ticket_id, staff_id)
    assert (await thread(client, caller, ticket_id))["thread"]["status"] == 0


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("getTicket", {}),
        ("replyTicket", {"content": "x"}),
        ("closeTicket", {}),
        ("reopenTicket", {}),
        ("getTicketAttachment", {"attachmentId": 1}),
    ],
)
@pytest.mark.parametrize("ticket_id", ["abc", 0, -5, 2**63, None, 1.5])
async def test_bad_ticket_ids_are_1003(
    client: httpx.AsyncClient, caller: Caller, action: str, params: dict[str, Any], ticket_id: Any
) -> None:
    response = await call(client, caller, action, ticketId=ticket_id, **params)
    assert_error(response, 1003, 400)
    assert "ticketId" in error_properties(response)


async def test_ticket_made_by_the_factory_is_visible(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    ticket_id = make_ticket(runtime, caller.user_id, priority=3)
    (ticket,) = assert_success(await call(client, caller, "getTicketOverview"))["tickets"]
    assert (ticket["ticketId"], ticket["priorityId"]) == (ticket_id, 3)


async def test_alias_routes_serve_ticket_actions(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(
        f"{ENDPOINT}/createTicket",
        json={"userId": caller.user_id, "apiKey": caller.api_key, "title": "T", "content": "C"},
    )
    assert "ticketId" in assert_success(response)


async def test_get_ticket_state_says_whose_turn_it_is_and_get_ticket_keeps_its_answer(
    runtime: Runtime, client: httpx.AsyncClient, caller: Caller, clock: FrozenClock
) -> None:
    from ledgerdesk.events.work import Actor, Origin
    from ledgerdesk.tickets.service import TicketService

    ticket_id = await create(client, caller)
    before = await thread(client, caller, ticket_id)
    state = assert_success(await call(client, caller, "getTicketState", ticketId=ticket_id))
    assert state == {"ticketId": ticket_id, "status": 1, "turn": "support", "waitingUntil": None}
    staff_id = make_user(runtime, name="Sam", staff=True)
    with runtime.work(Actor.staff(staff_id), Origin("console")) as work:
        TicketService(work).wait_for_customer(ticket_id, clock.now + 3600)
    state = assert_success(await call(client, caller, "getTicketState", ticketId=ticket_id))
    assert (state["turn"], state["waitingUntil"]) == ("customer", clock.now + 3600)
    assert await thread(client, caller, ticket_id) == before  # byte for byte the same keys
    clock.advance(3601)  # support waited long enough: their turn again
    state = assert_success(await call(client, caller, "getTicketState", ticketId=ticket_id))
    assert (state["turn"], state["waitingUntil"]) == ("support", None)
    other = make_customer(runtime, "Other")
    assert_error(await call(client, other, "getTicketState", ticketId=ticket_id), 3001, 404)
