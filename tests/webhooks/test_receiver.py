"""The tests' own webhook receiver holds up to what the relay sends it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"


async def test_thousands_of_deliveries_on_one_kept_alive_connection_are_all_answered() -> None:
    # A relay keeps its connection open: the scale-out test sends thousands on one.
    receiver = Receiver(secrets=[SECRET])
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    signer = Webhook(SECRET)
    count = 1500
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for number in range(count):
            body = b'{"type":"ticket.created","data":[1]}'
            webhook_id = str(number)
            timestamp = datetime.now(UTC)
            signature = signer.sign(webhook_id, timestamp, body.decode())
            head = (
                f"POST /hooks HTTP/1.1\r\nwebhook-id: {webhook_id}\r\n"
                f"webhook-timestamp: {int(timestamp.timestamp())}\r\n"
                f"webhook-signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            answer = await reader.readuntil(b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200")
            length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
    assert receiver.unverified == []
    assert len(receiver.verified) == count
