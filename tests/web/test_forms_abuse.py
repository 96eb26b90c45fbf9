"""Forms under attack (issue: what people trip over): upload forms read before the
session was checked (589 MB landed on disk before a redirect to sign in), and bodies
spooled without a bound when sent without a length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledgerdesk.runtime import Runtime
from ledgerdesk.web.core import MAX_FORM_BYTES
from tests.factories import make_customer, make_ticket
from tests.web.conftest import WebClient, csrf_of, make_person

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


class Body:
    """A multipart body sent piece by piece, counting what the server has read."""

    def __init__(self, pieces: int, piece: bytes = b"x" * MIB) -> None:
        self.pieces = pieces
        self.piece = piece
        self.read = 0

    async def stream(self) -> AsyncIterator[bytes]:
        yield (
            b'--bnd\r\nContent-Disposition: form-data; name="content"\r\n\r\nhello\r\n'
            b'--bnd\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        for _ in range(self.pieces):
            self.read += 1
            yield self.piece
        yield b"\r\n--bnd--\r\n"


def files_on_disk(runtime: Runtime) -> list[Path]:
    return [p for p in runtime.settings.data_dir.rglob("*") if p.is_file() and ".part" in p.name]


async def test_an_upload_without_a_session_is_not_read(runtime: Runtime, web: WebClient) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id)
    body = Body(pieces=50)
    answer = await web.http.post(
        f"/console/tickets/{ticket_id}/reply",
        content=body.stream(),
        headers={"Content-Type": "multipart/form-data; boundary=bnd"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin")
    assert body.read <= 1  # the body was never read on: nothing spooled anywhere
    assert files_on_disk(runtime) == []


async def test_an_upload_of_the_other_side_is_not_read(runtime: Runtime, web: WebClient) -> None:
    """A customer's session is no session for the console."""
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    caller = make_customer(runtime, "Bob")
    ticket_id = make_ticket(runtime, caller.user_id)
    body = Body(pieces=50)
    answer = await web.http.post(
        f"/console/tickets/{ticket_id}/reply",
        content=body.stream(),
        headers={"Content-Type": "multipart/form-data; boundary=bnd"},
    )
    assert answer.status_code == 303
    assert body.read <= 1


async def test_a_form_without_a_length_is_cut_off_at_its_bound(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")

    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"csrf=x"
        for _ in range(10 * MAX_FORM_BYTES // 65536):
            sent += 65536
            yield b"&n=" + b"a" * 65533

    answer = await web.http.post(
        "/account/keys",
        content=endless(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert "larger than" in answer.text
    assert sent <= MAX_FORM_BYTES + 65536


async def test_an_upload_without_a_length_is_cut_off_at_the_body_limit(
    runtime: Runtime, web: WebClient
) -> None:
    runtime.settings = runtime.settings.with_overrides(
        max_body_bytes=4 * MIB, max_attachment_bytes=64 * MIB
    )
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    page = await web.get("/account/tickets/new")
    body = Body(pieces=30)

    async def with_token() -> AsyncIterator[bytes]:
        yield (
            f'--bnd\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf_of(page.text)}\r\n'
        ).encode()
        async for piece in body.stream():
            yield piece

    answer = await web.http.post(
        "/account/tickets/new",
        content=with_token(),
        headers={"Content-Type": "multipart/form-data; boundary=bnd"},
    )
    assert answer.status_code == 400
    assert "larger than 4194304 bytes" in answer.text
    assert body.read <= 6
    assert files_on_disk(runtime) == []


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    body = Body(pieces=50)
    limit = runtime.settings.max_body_bytes
    answer = await web.http.post(
        "/account/tickets/new",
        content=body.stream(),
        headers={
            "Content-Type": "multipart/form-data; boundary=bnd",
            "Content-Length": str(limit + 1),
        },
    )
    assert answer.status_code == 413
    assert body.read == 0
