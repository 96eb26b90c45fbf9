"""A real HTTP receiver for the tests: it verifies every delivery with the reference
``standardwebhooks`` package and answers as a script says."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook

# (status, extra header lines, body) for the n-th request of a webhook-id (1-based)
Script = Callable[[str, int], tuple[int, str, bytes]]


def always_ok(_: str, __: int) -> tuple[int, str, bytes]:
    return 200, "", b"thanks"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One HTTP request's path, headers (by lower-case name) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    path = lines[0].split()[1]
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return path, headers, body


@dataclass
class Delivered:
    path: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any]


@dataclass
class Receiver:
    secrets: list[str]
    script: Script = always_ok
    delay: float = 0.0
    port: int = 0
    requests: list[Delivered] = field(default_factory=list)
    verified: list[Delivered] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Endpoints told apart by path, each with its own secret.
    path_secrets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def ids(self) -> list[str]:
        """webhook-ids answered 2xx, in the order they were."""
        return [d.webhook_id for d in self.verified]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Every request of a kept-alive connection, one after another, until it closes
        (a loop: a relay may send thousands on one connection)."""
        try:
            while True:
                await self._answer_one(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, headers, body = await read_request(reader)
        webhook_id = headers.get("webhook-id", "")
        tried = f"{path} {webhook_id}"  # tries are counted per endpoint
        self.tries[tried] = self.tries.get(tried, 0) + 1
        status, extra, content = self.script(webhook_id, self.tries[tried])
        if self.delay:
            await asyncio.sleep(self.delay)
        delivered = Delivered(path, webhook_id, headers, body, json.loads(body))
        self.requests.append(delivered)
        if 200 <= status < 300:
            # Every secret given must verify the delivery on its own.
            for secret in self.path_secrets.get(path, self.secrets):
                try:
                    Webhook(secret).verify(body, headers)
                except Exception as exc:
                    self.unverified.append(f"{webhook_id}: {exc}")
                    status = 400
            if status < 300:
                self.verified.append(delivered)
        writer.write(
            f"HTTP/1.1 {status} X\r\n{extra}Content-Length: {len(content)}\r\n"
            "Connection: keep-alive\r\n\r\n".encode()
            + content
        )
        await writer.drain()
        self.arrived.set()

    async def wait_for(self, count: int, timeout: float = 15) -> None:
        """Until ``count`` distinct webhook-ids were answered 2xx."""
        async with asyncio.timeout(timeout):
            while len(set(self.ids())) < count:
                self.arrived.clear()
                await self.arrived.wait()


def flaky(webhook_id: str, tries: int) -> tuple[int, str, bytes]:
    """Every third event fails its first two attempts."""
    return (500, "", b"try again") if int(webhook_id) % 3 == 0 and tries <= 2 else (200, "", b"")


@contextmanager
def receiver_thread(host: str = "127.0.0.1") -> Iterator[Receiver]:
    """The receiver on an event loop of its own, in a thread; every third event fails its
    first two attempts (``flaky``) unless its script is changed."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: list[Receiver] = []
    stopping: list[asyncio.Event] = []

    async def serve() -> None:
        receiver = Receiver(secrets=[], script=flaky, delay=0.02)
        server = await asyncio.start_server(receiver.handle, host, 0)
        receiver.port = server.sockets[0].getsockname()[1]
        found.append(receiver)
        stopping.append(asyncio.Event())
        ready.set()
        async with server:
            await stopping[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield found[0]
    finally:
        loop.call_soon_threadsafe(stopping[0].set)
        thread.join(10)
        loop.close()
