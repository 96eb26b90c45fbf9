"""Attachments in (base64 JSON, multipart) and out (the file, or base64), and their limits."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import Attachment, Blob, Reply, Ticket
from ledgerdesk.runtime import Runtime
from tests.conftest import CLIENT_ADDRESS, make_client
from tests.factories import make_customer
from tests.support import (
    ENDPOINT,
    Caller,
    FrozenClock,
    assert_error,
    assert_success,
    call,
    json_attachment,
)

pytestmark = pytest.mark.anyio

EVERY_BYTE = bytes(range(256)) * 3


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


async def new_ticket(client: httpx.AsyncClient, caller: Caller, *files: dict[str, Any]) -> int:
    response = await call(
        client, caller, "createTicket", title="T", content="C", attachments=list(files)
    )
    ticket_id: int = assert_success(response)["ticketId"]
    return ticket_id


async def attachment_ids(client: httpx.AsyncClient, caller: Caller, ticket_id: int) -> list[int]:
    data = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    return [a["attachmentId"] for r in data["replies"] for a in r["attachments"]]


def counts(runtime: Runtime) -> tuple[int, int, int]:
    with unit_of_work(runtime.sessions, write=False) as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, Reply, Attachment)
        )


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "attachments"
    incoming = root / "incoming"
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(incoming)]


# -- downloads ---------------------------------------------------------------------------


async def test_download_is_the_file_itself_byte_for_byte(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = await new_ticket(client, caller, json_attachment("dump.bin", EVERY_BYTE))
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    assert response.status_code == 200
    assert response.content == EVERY_BYTE
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(EVERY_BYTE))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"dump.bin\"; filename*=UTF-8''dump.bin"
    )


async def test_unicode_names_are_kept_and_encoded_per_rfc_5987(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    name = 'Überweisung "März" 2026 ✓.pdf'
    ticket_id = await new_ticket(
        client, caller, json_attachment(name, b"%PDF-1.7", "application/pdf")
    )
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    listed = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    assert listed["replies"][0]["attachments"][0]["name"] == name
    response = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="_berweisung _M_rz_ 2026 _.pdf"; ')
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == name
    assert response.headers["content-type"] == "application/pdf"


async def test_path_like_names_are_only_names(
    client: httpx.AsyncClient, caller: Caller, settings: Settings
) -> None:
    name = "../../../etc/passwd"
    ticket_id = await new_ticket(client, caller, json_attachment(name, b"root:x:0:0"))
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=attachment_id,
        encoding="base64",
    )
    assert assert_success(response)["tickets"]["name"] == name
    for path in stored_files(settings):
        assert path.resolve().is_relative_to((settings.data_dir / "attachments").resolve())
        assert path.name == hashlib.sha256(b"root:x:0:0").hexdigest()


async def test_base64_download_is_the_envelope(client: httpx.AsyncClient, caller: Caller) -> None:
    data = EVERY_BYTE * 100  # long enough that MIME encoders would wrap lines
    ticket_id = await new_ticket(client, caller, json_attachment("a.bin", data, "image/png"))
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=attachment_id,
        encoding="base64",
    )
    envelope = assert_success(response)["tickets"]
    assert envelope == {
        "attachmentId": attachment_id,
        "name": "a.bin",
        "contentType": "image/png",
        "size": len(data),
        "content": base64.b64encode(data).decode(),
    }
    assert "\n" not in envelope["content"]
    assert base64.b64decode(envelope["content"], validate=True) == data


async def test_unknown_encoding_is_1003(client: httpx.AsyncClient, caller: Caller) -> None:
    ticket_id = await new_ticket(client, caller, json_attachment("a.bin", b"x"))
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=attachment_id,
        encoding="hex",
    )
    assert_error(response, 1003, 400)


async def test_attachment_of_another_ticket_is_3001(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    first = await new_ticket(client, caller, json_attachment("a.bin", b"x"))
    second = await new_ticket(client, caller)
    (attachment_id,) = await attachment_ids(client, caller, first)
    response = await call(
        client, caller, "getTicketAttachment", ticketId=second, attachmentId=attachment_id
    )
    assert_error(response, 3001, 404)


async def test_mime_wrapped_base64_is_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    data = EVERY_BYTE * 10
    wrapped = base64.encodebytes(data).decode()  # 76-character lines
    assert "\n" in wrapped
    file = {"name": "w.bin", "content": wrapped, "contentType": "text/plain", "size": len(data)}
    ticket_id = await new_ticket(client, caller, file)
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    assert response.content == data


# -- multipart ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["attachments[]", "attachments", "attachment"])
async def test_multipart_reply_stores_files_byte_exact(
    client: httpx.AsyncClient, caller: Caller, field: str
) -> None:
    ticket_id = await new_ticket(client, caller)
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="logs attached"),
        files=[
            (field, ("dmesg.log", EVERY_BYTE, "text/plain")),
            (field, ("photo.jpg", b"\xff\xd8\xff" + EVERY_BYTE, "image/jpeg")),
        ],
    )
    assert assert_success(response) == {"ticketId": ticket_id}
    data = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    reply = data["replies"][1]
    assert reply["content"] == "logs attached"
    assert [(a["name"], a["contentType"], a["size"]) for a in reply["attachments"]] == [
        ("dmesg.log", "text/plain", len(EVERY_BYTE)),
        ("photo.jpg", "image/jpeg", len(EVERY_BYTE) + 3),
    ]
    downloaded = [
        (
            await call(
                client,
                caller,
                "getTicketAttachment",
                ticketId=ticket_id,
                attachmentId=a["attachmentId"],
            )
        ).content
        for a in reply["attachments"]
    ]
    assert downloaded == [EVERY_BYTE, b"\xff\xd8\xff" + EVERY_BYTE]


async def test_multipart_create_ticket_works_too(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(
        ENDPOINT,
        data=caller.form("createTicket", title="From curl -F", content="see file"),
        files={"attachment": ("été.txt", "ça va".encode(), "text/plain; charset=utf-8")},
    )
    ticket_id = assert_success(response)["ticketId"]
    data = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    (info,) = data["replies"][0]["attachments"]
    assert (info["name"], info["contentType"]) == ("été.txt", "text/plain; charset=utf-8")


async def test_multipart_rfc_5987_file_names_are_decoded(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = await new_ticket(client, caller)
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="userId"\r\n\r\n'
        f"{caller.user_id}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="apiKey"\r\n\r\n'
        f"{caller.api_key}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="action"\r\n\r\nreplyTicket\r\n'
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="ticketId"\r\n\r\n{ticket_id}\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="content"\r\n\r\nhi\r\n'
        f"--{boundary}\r\n"
        "Content-Disposition: form-data; name=\"attachment\"; filename*=UTF-8''%E2%9C%93.txt\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "tick\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    response = await client.post(
        ENDPOINT,
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_success(response)
    data = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    assert data["replies"][1]["attachments"][0]["name"] == "✓.txt"


async def test_multipart_without_content_type_defaults_to_octet_stream(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = await new_ticket(client, caller)
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files={"attachment": ("blob", b"\x00\x01")},
    )
    assert_success(response)
    data = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    assert data["replies"][1]["attachments"][0]["contentType"] == "application/octet-stream"


async def test_multipart_with_eleven_files_is_1003(
    client: httpx.AsyncClient, caller: Caller, settings: Settings
) -> None:
    ticket_id = await new_ticket(client, caller)
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files=[("attachments[]", (f"{i}.txt", b"x", "text/plain")) for i in range(11)],
    )
    assert_error(response, 1003, 400)
    assert stored_files(settings) == []


async def test_multipart_with_a_bad_content_type_is_1003(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket_id = await new_ticket(client, caller)
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files={"attachment": ("a.txt", b"x", "not a type")},
    )
    body = assert_error(response, 1003, 400)
    assert body["data"]["errors"][0]["property"] == "attachments[0].contentType"


# -- limits ------------------------------------------------------------------------------


@pytest.fixture
def small_limits(settings: Settings, clock: FrozenClock) -> Iterator[LedgerdeskApp]:
    app = create_app(
        settings.with_overrides(max_attachment_bytes=1000, max_body_bytes=64 * 1024), clock=clock
    )
    yield app
    app.state.runtime.engine.dispose()


@pytest.mark.parametrize(("size", "accepted"), [(1000, True), (1001, False)])
async def test_declared_size_is_checked_against_the_limit(
    small_limits: LedgerdeskApp, caller: Caller, size: int, accepted: bool
) -> None:
    client = make_client(small_limits, CLIENT_ADDRESS)
    response = await call(
        client,
        caller,
        "createTicket",
        title="T",
        content="C",
        attachments=[json_attachment("file.bin", b"x" * size)],
    )
    if accepted:
        assert_success(response)
    else:
        assert_error(response, 4001, 413)


async def test_multipart_file_over_the_limit_is_4001_and_leaves_nothing(
    small_limits: LedgerdeskApp, caller: Caller, settings: Settings
) -> None:
    client = make_client(small_limits, CLIENT_ADDRESS)
    ticket_id = await new_ticket(client, caller)
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files={"attachment": ("big.bin", b"x" * 1001, "application/octet-stream")},
    )
    assert_error(response, 4001, 413)
    assert stored_files(settings) == []


async def test_multipart_body_over_the_limit_is_4001(
    small_limits: LedgerdeskApp, caller: Caller, settings: Settings
) -> None:
    client = make_client(small_limits, CLIENT_ADDRESS)
    ticket_id = await new_ticket(client, caller)
    files = [("attachments[]", (f"{i}.bin", b"y" * 900, "text/plain")) for i in range(10)]
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x" * 60_000),
        files=files,
    )
    assert_error(response, 4001, 413)
    assert stored_files(settings) == []


# -- atomicity ---------------------------------------------------------------------------


async def test_invalid_tenth_attachment_stores_no_ticket_reply_or_file(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime, settings: Settings
) -> None:
    files = [json_attachment(f"{i}.bin", f"file {i}".encode()) for i in range(9)]
    files.append({**json_attachment("9.bin", b"tenth"), "size": 999})
    before = counts(runtime)
    response = await call(client, caller, "createTicket", title="T", content="C", attachments=files)
    assert_error(response, 1003, 400)
    assert counts(runtime) == before
    assert stored_files(settings) == []


async def test_failure_after_files_were_stored_removes_them(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, settings: Settings
) -> None:
    ticket_id = await new_ticket(client, caller)
    with unit_of_work(runtime.sessions, write=True) as session:
        session.get(Ticket, ticket_id).status = 2  # type: ignore[union-attr]
    response = await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files=[("attachments[]", ("a.bin", b"fresh bytes", "application/octet-stream"))],
    )
    assert_error(response, 3002, 409)
    assert stored_files(settings) == []


@pytest.fixture(params=["local", "database"])
def store_app(
    request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock
) -> Iterator[LedgerdeskApp]:
    """The app with each attachment store in turn (on each database)."""
    app = create_app(settings.with_overrides(attachment_store=request.param), clock=clock)
    yield app
    app.state.runtime.engine.dispose()


def blob_rows(runtime: Runtime) -> int:
    with unit_of_work(runtime.sessions, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Blob)) or 0)


async def test_identical_files_are_stored_once(
    store_app: LedgerdeskApp, settings: Settings
) -> None:
    runtime: Runtime = store_app.state.runtime
    caller = make_customer(runtime)
    client = make_client(store_app, CLIENT_ADDRESS)
    await new_ticket(
        client, caller, json_attachment("a.bin", b"same"), json_attachment("b.bin", b"same")
    )
    await new_ticket(client, caller, json_attachment("c.bin", b"same"))
    stored = len(stored_files(settings)) + blob_rows(runtime)
    assert stored == 1


async def test_failed_upload_keeps_bytes_that_a_committed_row_uses(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, settings: Settings
) -> None:
    ticket_id = await new_ticket(client, caller, json_attachment("keep.bin", b"shared bytes"))
    with unit_of_work(runtime.sessions, write=True) as session:
        session.get(Ticket, ticket_id).status = 2  # type: ignore[union-attr]
    response = await call(
        client,
        caller,
        "replyTicket",
        ticketId=ticket_id,
        content="x",
        attachments=[json_attachment("again.bin", b"shared bytes")],
    )
    assert_error(response, 3002, 409)
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    download = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    assert download.content == b"shared bytes"


async def test_no_temporary_files_are_left_behind(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    ticket_id = await new_ticket(client, caller, json_attachment("a.bin", b"a"))
    await client.post(
        ENDPOINT,
        data=caller.form("replyTicket", ticketId=str(ticket_id), content="x"),
        files={"attachment": ("b.bin", b"b", "text/plain")},
    )
    await call(
        client,
        caller,
        "createTicket",
        title="",
        content="C",
        attachments=[json_attachment("c", b"c")],
    )
    assert list(runtime.incoming_dir.iterdir()) == []


# -- the stores --------------------------------------------------------------------------


async def test_both_stores_round_trip_on_both_databases(
    store_app: LedgerdeskApp, settings: Settings
) -> None:
    runtime: Runtime = store_app.state.runtime
    caller = make_customer(runtime)
    client = make_client(store_app, CLIENT_ADDRESS)
    ticket_id = await new_ticket(client, caller, json_attachment("x.bin", EVERY_BYTE))
    (attachment_id,) = await attachment_ids(client, caller, ticket_id)
    response = await call(
        client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
    )
    assert response.content == EVERY_BYTE
    local = runtime.settings.attachment_store == "local"
    assert blob_rows(runtime) == (0 if local else 1)
    assert len(stored_files(settings)) == (1 if local else 0)


async def test_local_file_lost_behind_the_database_is_an_internal_error(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings.with_overrides(attachment_store="local"), clock=clock)
    try:
        caller = make_customer(app.state.runtime)
        client = make_client(app, CLIENT_ADDRESS)
        ticket_id = await new_ticket(client, caller, json_attachment("gone.bin", b"soon gone"))
        (attachment_id,) = await attachment_ids(client, caller, ticket_id)
        for path in stored_files(settings):
            path.unlink()
        response = await call(
            client, caller, "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id
        )
    finally:
        app.state.runtime.engine.dispose()
    assert_error(response, 5000, 500)


async def test_memory_stays_bounded_for_large_multipart_uploads(
    runtime: Runtime, app: LedgerdeskApp, caller: Caller
) -> None:
    import tracemalloc

    ticket_id = await new_ticket(make_client(app, CLIENT_ADDRESS), caller)
    boundary = "memboundary"
    file_size = 4 * 1024 * 1024
    chunk = bytes(range(256)) * 256  # 64 KiB

    async def body() -> AsyncIterator[bytes]:
        fields = {
            "userId": str(caller.user_id),
            "apiKey": caller.api_key,
            "action": "replyTicket",
            "ticketId": str(ticket_id),
            "content": "ten big files",
        }
        for name, value in fields.items():
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        for index in range(10):
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="attachments[]"; '
                f'filename="{index}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            for _ in range(file_size // len(chunk)):
                yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    client = make_client(app, CLIENT_ADDRESS)
    tracemalloc.start()
    try:
        response = await client.post(
            ENDPOINT,
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_success(response)
    # 40 MiB went through; a server holding the files in memory would peak far above this.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
