"""Cheap attacks on a real server's sockets (issue: what people trip over): bodies that
dribble, hosts that open hundreds of connections, readers that never read."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.servers import free_port, running
from tests.support import Caller, json_attachment

ENDPOINT = "/api/rest/v2/administration"
PER_ADDRESS = 6


class Server:
    def __init__(self, port: int, caller: Caller) -> None:
        self.port = port
        self.caller = caller
        self.url = f"http://127.0.0.1:{port}{ENDPOINT}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite server with short deadlines and a small per-address cap."""
    port = free_port()
    data = tmp_path_factory.mktemp("attacks")
    env = {
        "LEDGERDESK_DATA_DIR": str(data),
        "LEDGERDESK_BODY_TIMEOUT": "1",
        "LEDGERDESK_BODY_DEADLINE": "4",
        "LEDGERDESK_BODY_MIN_RATE": "2000",
        "LEDGERDESK_SEND_TIMEOUT": "1",
        "LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
        "LEDGERDESK_RATE_LIMIT": "100000",
    }
    with running(["serve", "--port", str(port)], port, env):
        runtime = Runtime.build(Settings.from_env(env))
        try:
            caller = make_customer(runtime)
        finally:
            runtime.engine.dispose()
        yield Server(port, caller)


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def head(length: int) -> bytes:
    return (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def dribble(sock: socket.socket, piece: bytes, every: float, limit: float) -> float:
    """Send ``piece`` every ``every`` seconds until the server answers; how long it took."""
    started = time.monotonic()
    sock.settimeout(every)
    answer = b""
    while time.monotonic() - started < limit:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if answer:
            break
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    return took


def test_a_body_dribbled_under_the_minimum_rate_is_cut_off(server: Server) -> None:
    """A byte every half second never trips the one-second pause timeout; the minimum
    rate (2000 bytes a second after the first second) cuts it off all the same."""
    with connect(server.port) as sock:
        sock.sendall(head(150_000_000) + b'{"pad": "')
        took = dribble(sock, b"x", 0.5, limit=10)
    assert took < 3.5


def test_a_body_sent_fast_enough_but_never_ending_meets_its_deadline(server: Server) -> None:
    """Above the minimum rate, a body still has a total deadline (4 s here)."""
    with connect(server.port) as sock:
        sock.sendall(head(150_000_000) + b'{"pad": "')
        took = dribble(sock, b"x" * 4000, 0.5, limit=15)
    assert 3.5 < took < 7


def test_one_host_cannot_take_every_connection(server: Server) -> None:
    held = [connect(server.port) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.2)
        with connect(server.port) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"retry-after: 1" in answer
        assert b"from your address" in answer
        # Another host is answered meanwhile.
        with connect(server.port, source="127.0.0.2") as other:
            body = json.dumps(server.caller.body("getTicketOverview")).encode()
            other.sendall(head(len(body)) + body)
            assert other.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with connect(server.port) as sock:  # room again once they are gone
        body = json.dumps(server.caller.body("getTicketOverview")).encode()
        sock.sendall(head(len(body)) + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_reader_that_never_reads_is_dropped(server: Server) -> None:
    data = os.urandom(3 * 1024 * 1024)
    created = httpx.post(
        server.url,
        json=server.caller.body(
            "createTicket", title="big", content="c", attachments=[json_attachment("a.bin", data)]
        ),
        timeout=30,
    ).json()
    ticket_id = created["data"]["ticketId"]
    thread = httpx.post(
        server.url, json=server.caller.body("getTicket", ticketId=ticket_id), timeout=30
    ).json()
    attachment_id = thread["data"]["replies"][0]["attachments"][0]["attachmentId"]
    body = json.dumps(
        server.caller.body(
            "getTicketAttachment",
            ticketId=ticket_id,
            attachmentId=attachment_id,
            encoding="base64",
        )
    ).encode()
    # A whole answer, read at once, is the file's base64 in the envelope.
    whole = httpx.post(server.url, content=body, headers={"Content-Type": "application/json"})
    assert base64.b64decode(whole.json()["data"]["tickets"]["content"]) == data
    assert int(whole.headers["content-length"]) == len(whole.content)
    # A client that asks and stops reading is dropped after the send timeout.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(head(len(body)) + body)
        time.sleep(3)
        received = read_all(sock)
    assert 0 < len(received) < len(whole.content)


def test_a_slow_huge_body_leaves_uploads_of_others_answered(server: Server) -> None:
    """One connection declares 150 MB and dribbles; another address's 1 MB upload is
    answered meanwhile (the whole declared length used to be reserved: every upload of
    64 KiB or more got 503)."""
    stop = threading.Event()

    def hog() -> None:
        with connect(server.port) as sock:
            sock.sendall(head(150_000_000) + b'{"pad": "')
            while not stop.is_set():
                try:
                    sock.sendall(b"x" * 3000)
                except OSError:
                    return
                time.sleep(0.5)

    thread = threading.Thread(target=hog)
    thread.start()
    try:
        time.sleep(0.5)
        with httpx.Client(
            transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=30
        ) as other:
            answer = other.post(
                server.url,
                json=server.caller.body(
                    "createTicket",
                    title="upload",
                    content="c",
                    attachments=[json_attachment("b.bin", os.urandom(1024 * 1024))],
                ),
            )
        assert answer.status_code == 200, answer.text
    finally:
        stop.set()
        thread.join()
