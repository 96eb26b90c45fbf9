"""What an attacker or a careless client found, each kept as a test (issue: hold under abuse)."""

from __future__ import annotations

import base64
import time
from datetime import date
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Reply, Ticket
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire.body import MAX_JSON_CONTAINERS
from tests.factories import make_customer, make_invoice
from tests.support import (
    ENDPOINT,
    Caller,
    assert_error,
    assert_success,
    call,
    json_attachment,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


def uploads_left(runtime: Runtime) -> list[Path]:
    return [p for p in runtime.incoming_dir.rglob("*") if p.is_file()]


def multipart(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    """A hand-made multipart body: (Content-Disposition parameters, content) per part."""
    out = b""
    for disposition, content in parts:
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def create_ticket_parts(caller: Caller) -> list[tuple[str, bytes]]:
    """A createTicket's fields, to be followed by file parts."""
    return [
        *credentials_parts(caller, "createTicket"),
        ('name="title"', b"t"),
        ('name="content"', b"c"),
    ]


async def post_multipart(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        ENDPOINT, content=body, headers={"Content-Type": "multipart/form-data; boundary=bnd"}
    )


def credentials_parts(caller: Caller, action: str) -> list[tuple[str, bytes]]:
    return [
        ('name="userId"', str(caller.user_id).encode()),
        ('name="apiKey"', caller.api_key.encode()),
        ('name="action"', action.encode()),
    ]


# -- 1: memory blow-up before authentication -------------------------------------------


async def test_a_json_array_is_refused_before_it_is_parsed(client: httpx.AsyncClient) -> None:
    body = b"[" + b"{}," * 1_000_000 + b"{}]"  # 3 MB that would parse into a million dicts
    started = time.perf_counter()
    response = await client.post(
        ENDPOINT, content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 1001, 400)
    assert "must be a JSON object" in response.json()["msg"]
    assert time.perf_counter() - started < 5


async def test_millions_of_tiny_values_inside_an_object_are_refused(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"a": [' + b"{}," * (MAX_JSON_CONTAINERS + 1) + b"{}]}"
    response = await client.post(
        ENDPOINT, content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 1001, 400)
    many_numbers = b'{"a": [' + b"1," * 300_000 + b"1]}"
    response = await client.post(
        ENDPOINT, content=many_numbers, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 1001, 400)


async def test_absurd_nesting_is_1001(client: httpx.AsyncClient) -> None:
    body = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(
        ENDPOINT, content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 1001, 400)


async def test_a_large_valid_body_is_parsed_off_the_event_loop(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    """While a multi-megabyte body is parsed, the event loop keeps answering."""
    content = base64.b64encode(b"\x00" * (6 * 1024 * 1024)).decode()
    body = caller.body("createTicket", title="big", content="c")
    body["attachments"] = [
        {
            "name": "a.bin",
            "content": content,
            "contentType": "application/octet-stream",
            "size": 6 * 1024 * 1024,
        }
    ]
    ticks = 0
    done = False

    async def tick() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        response = await client.post(ENDPOINT, json=body)
        done = True
    assert_success(response)
    assert ticks > 1


# -- 2: temporary upload files leak ----------------------------------------------------


async def test_a_bad_text_part_before_many_files_leaves_no_file(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    parts = [
        *credentials_parts(caller, "createTicket"),
        ('name="title"', b"\xff\xfe not utf-8"),
        *[(f'name="attachments[]"; filename="f{i}.bin"', b"x" * 10) for i in range(300)],
    ]
    response = await post_multipart(client, multipart("bnd", parts))
    assert_error(response, 1001, 400)
    assert uploads_left(runtime) == []


async def test_eleven_files_leave_no_file(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    parts = [
        *create_ticket_parts(caller),
        *[(f'name="attachments[]"; filename="f{i}.bin"', b"x") for i in range(11)],
    ]
    response = await post_multipart(client, multipart("bnd", parts))
    assert_error(response, 1003, 400)
    assert uploads_left(runtime) == []


async def test_a_body_ending_inside_a_file_part_is_1001_and_leaves_no_file(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    parts = [
        *create_ticket_parts(caller),
        ('name="attachment"; filename="cut.bin"', b"half a file"),
    ]
    body = multipart("bnd", parts).removesuffix(b"--bnd--\r\n")
    response = await post_multipart(client, body)
    assert_error(response, 1001, 400)
    assert uploads_left(runtime) == []


async def test_conflicting_field_names_beside_files_are_1001_and_leave_no_file(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    """Found by the fuzzer: the files were complete when the field names were nested,
    and a conflict (``x`` both a value and a list) left them behind."""
    parts = [
        *create_ticket_parts(caller),
        *[(f'name="attachments[]"; filename="f{i}.bin"', b"x" * 10) for i in range(4)],
        ('name="x"', b"1"),
        ('name="x[y]"', b"2"),
    ]
    response = await post_multipart(client, multipart("bnd", parts))
    assert_error(response, 1001, 400)
    assert uploads_left(runtime) == []


async def test_multipart_text_fields_are_bounded_in_total(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    parts = [
        *credentials_parts(caller, "createTicket"),
        *[(f'name="extra{i}"', b"x" * 200_000) for i in range(5)],
    ]
    response = await post_multipart(client, multipart("bnd", parts))
    assert_error(response, 4001, 413)
    assert uploads_left(runtime) == []


# -- 3: a 500 from one filename ----------------------------------------------------------


@pytest.mark.parametrize(
    "filename", ["punycode''%00", "utf-16''%ff", "no-such-charset''x", "UTF-8''%ff%fe"]
)
async def test_an_undecodable_extended_filename_is_1003(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime, filename: str
) -> None:
    parts = [
        *create_ticket_parts(caller),
        (f'name="attachment"; filename*={filename}', b"data"),
    ]
    response = await post_multipart(client, multipart("bnd", parts))
    assert_error(response, 1003, 400)
    assert uploads_left(runtime) == []


# -- 4: validation does not depend on the read cache -------------------------------------


@pytest.mark.parametrize(
    ("action", "good", "bad"),
    [
        ("getInvoiceDetails", {"invoiceId": 1}, {"invoiceId": True}),
        ("getInvoiceDetails", {"invoiceId": 1}, {"invoiceId": 1.0}),
        ("getTicketOverview", {"status": 0}, {"status": False}),
        ("getInvoiceIds", {"status": 1}, {"status": True}),
    ],
)
async def test_a_cached_answer_never_excuses_a_bad_parameter(
    client: httpx.AsyncClient,
    caller: Caller,
    runtime: Runtime,
    action: str,
    good: dict[str, object],
    bad: dict[str, object],
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=date(2026, 11, 20))
    if "invoiceId" in good:
        good = {"invoiceId": invoice.id}  # 1 on a fresh SQLite database, where True == 1
    first = await call(client, caller, action, **good)
    assert first.status_code == 200
    assert_error(await call(client, caller, action, **bad), 1003, 400)


async def test_equal_requests_share_a_cached_answer_however_spelled(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=date(2026, 11, 20))
    as_int = await call(client, caller, "getInvoiceDetails", invoiceId=invoice.id)
    as_text = await call(client, caller, "getInvoiceDetails", invoiceId=str(invoice.id))
    assert as_int.status_code == 200
    assert as_int.content == as_text.content


# -- 5: idempotent retries compare meaning, not encoding --------------------------------


def count(runtime: Runtime, model: type[Ticket] | type[Reply]) -> int:
    with unit_of_work(runtime.sessions, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_retry_on_the_alias_url_answers_the_first_answer(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    headers = {"Idempotency-Key": "alias-1"}
    first = await client.post(
        ENDPOINT, json=caller.body("createTicket", title="T", content="C"), headers=headers
    )
    body = caller.body("createTicket", title="T", content="C")
    del body["action"]
    again = await client.post(f"{ENDPOINT}/createTicket", json=body, headers=headers)
    assert first.content == again.content
    assert count(runtime, Ticket) == 1


async def test_a_json_reply_retried_as_a_form_answers_the_first_answer(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    ticket = assert_success(await call(client, caller, "createTicket", title="T", content="C"))
    headers = {"Idempotency-Key": "reply-1"}
    first = await client.post(
        ENDPOINT,
        json=caller.body("replyTicket", ticketId=ticket["ticketId"], content="more"),
        headers=headers,
    )
    form = caller.form("replyTicket", ticketId=str(ticket["ticketId"]), content="more")
    again = await client.post(ENDPOINT, data=form, headers=headers)
    assert first.content == again.content
    assert count(runtime, Reply) == 2


async def test_a_base64_attachment_retried_as_multipart_answers_the_first_answer(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    headers = {"Idempotency-Key": "files-1"}
    first = await client.post(
        ENDPOINT,
        json=caller.body(
            "createTicket",
            title="T",
            content="C",
            attachments=[json_attachment("log.txt", b"line\n", "text/plain")],
        ),
        headers=headers,
    )
    again = await client.post(
        ENDPOINT,
        data=caller.form("createTicket", title="T", content="C"),
        files={"attachment": ("log.txt", b"line\n", "text/plain")},
        headers=headers,
    )
    assert first.content == again.content
    assert count(runtime, Ticket) == 1
    other_bytes = await client.post(
        ENDPOINT,
        data=caller.form("createTicket", title="T", content="C"),
        files={"attachment": ("log.txt", b"other\n", "text/plain")},
        headers=headers,
    )
    assert_error(other_bytes, 3003, 409)


# -- 8: smaller ones -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_405_says_allow_post(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, ENDPOINT)
    assert_error(response, 1006, 405)
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "content_type", ["text/html", "image/svg+xml", "text/javascript", "text/plain"]
)
async def test_downloads_are_sandboxed_and_keep_their_stored_type(
    client: httpx.AsyncClient, caller: Caller, content_type: str
) -> None:
    created = await call(
        client,
        caller,
        "createTicket",
        title="T",
        content="C",
        attachments=[json_attachment("x", b"<script>alert(1)</script>", content_type)],
    )
    ticket_id = assert_success(created)["ticketId"]
    thread = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    attachment_id = thread["replies"][0]["attachments"][0]["attachmentId"]
    response = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "ratelimit-remaining" in response.headers


async def test_invalid_base64_inside_a_long_attachment_is_1003_and_leaves_nothing(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime, app: LedgerdeskApp
) -> None:
    good = base64.b64encode(b"a" * 600_000).decode()
    broken = good[:300_000] + "!!!!" + good[300_004:]
    response = await call(
        client,
        caller,
        "createTicket",
        title="T",
        content="C",
        attachments=[
            {"name": "a", "content": broken, "contentType": "text/plain", "size": 600_000}
        ],
    )
    body = assert_error(response, 1003, 400)
    assert body["data"]["errors"][0]["property"] == "attachments[0].content"
    assert uploads_left(runtime) == []
    assert count(runtime, Ticket) == 0
