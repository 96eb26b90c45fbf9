"""One delivery attempt against a real (local) receiver: to the checked address with the
URL's host, redirects not followed, a deadline for all of it, answers kept short."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from ledgerdesk.webhooks.addresses import Target
from ledgerdesk.webhooks.transport import ANSWER_BYTES, Attempt, attempt, retry_after
from tests.webhooks.receiver import read_request

pytestmark = pytest.mark.anyio

LOOPBACK = ipaddress.ip_address("127.0.0.1")


class Receiver:
    """A tiny HTTP/1.1 server: what it answers depends on the path."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.answer(reader, writer)
        finally:
            writer.close()

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, headers, body = await read_request(reader)
        self.requests.append((path, headers, body))
        if path == "/slow":
            await asyncio.sleep(5)
        answers = {
            "/ok": (200, "", b"x" * (ANSWER_BYTES * 3)),
            "/redirect": (302, "Location: https://example.com/\r\n", b""),
            "/busy": (503, "Retry-After: 30\r\n", b"try later"),
            "/gone": (410, "", b""),
        }
        status, extra, content = answers.get(path, (404, "", b""))
        writer.write(
            f"HTTP/1.1 {status} X\r\n{extra}Content-Length: {len(content)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + content
        )
        await writer.drain()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


async def deliver(receiver: Receiver, path: str, timeout: float = 3) -> Attempt:
    target = Target("http", "hooks.example", receiver.port, path)
    async with httpx.AsyncClient() as client:
        return await attempt(
            client,
            target,
            LOOPBACK,
            {"webhook-id": "42", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
            b'{"type": "ticket.replied"}',
            timeout=timeout,
            version="1.2.3",
        )


async def test_a_2xx_succeeds_and_reaches_the_checked_address_as_the_url(
    receiver: Receiver,
) -> None:
    done = await deliver(receiver, "/ok")
    assert done.succeeded
    assert done.status == 200
    assert len(done.answer) == ANSWER_BYTES
    ((path, headers, body),) = receiver.requests
    assert path == "/ok"
    assert headers["host"] == f"hooks.example:{receiver.port}"
    assert headers["user-agent"] == "ledgerdesk/1.2.3"
    assert (headers["webhook-id"], headers["content-type"]) == ("42", "application/json")
    assert body == b'{"type": "ticket.replied"}'


async def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    done = await deliver(receiver, "/redirect")
    assert not done.succeeded
    assert done.error == "answered 302: redirects are not followed"
    assert len(receiver.requests) == 1


async def test_an_error_answer_keeps_its_retry_after(receiver: Receiver) -> None:
    done = await deliver(receiver, "/busy")
    assert (done.status, done.retry_after, done.answer) == (503, 30.0, b"try later")


async def test_a_receiver_that_does_not_answer_in_time_fails(receiver: Receiver) -> None:
    done = await deliver(receiver, "/slow", timeout=0.5)
    assert done.status is None
    assert done.error == "no answer within 0.5 s"
    assert done.seconds < 2


async def test_a_closed_port_fails_with_the_reason(receiver: Receiver) -> None:
    target = Target("http", "hooks.example", 1, "/")
    async with httpx.AsyncClient() as client:
        done = await attempt(client, target, LOOPBACK, {}, b"{}", timeout=3, version="1")
    assert done.status is None
    assert str(done.error).startswith("ConnectError")


def test_retry_after_takes_seconds_and_dates() -> None:
    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60
    assert retry_after("soon") is None
    assert retry_after(None) is None
