"""Slow and careless clients against a real server: timeouts, a connection cap, half-close."""

from __future__ import annotations

import json
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerdesk.process import tune_allocator
from tests.servers import free_port, running, start, stop

ENDPOINT = "/api/rest/v2/administration"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One server with short timeouts and a small connection cap (SQLite)."""
    port = free_port()
    data = tmp_path_factory.mktemp("serving")
    env = {
        "LEDGERDESK_DATA_DIR": str(data),
        "LEDGERDESK_HEADER_TIMEOUT": "1",
        "LEDGERDESK_BODY_TIMEOUT": "1",
        "LEDGERDESK_KEEPALIVE_TIMEOUT": "1",
        "LEDGERDESK_MAX_CONNECTIONS": "20",
    }
    with running(["serve", "--port", str(port)], port, env):
        yield port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_answer(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status.encode(), headers, body


def request(body: bytes) -> bytes:
    return (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_headers_sent_too_slowly_are_answered_408_and_closed(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST " + ENDPOINT.encode() + b" HTTP/1.1\r\nHost: t\r\n")
        started = time.monotonic()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["data"]["errorCode"] == 1001
    assert time.monotonic() - started < 5


def test_a_slowloris_dribbling_header_bytes_is_cut_off(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST " + ENDPOINT.encode() + b" HTTP/1.1\r\n")
        started = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):  # noqa: PT012
            for n in range(40):
                sock.sendall(f"X-Pad-{n}: a\r\n".encode())
                time.sleep(0.2)
    assert time.monotonic() - started < 5


def test_a_body_that_stops_arriving_is_408(server: int) -> None:
    with connect(server) as sock:
        head = request(b'{"pad": "' + b"x" * 100 + b'"}')
        sock.sendall(head[: len(head) - 90])  # the headers and the start of the body
        status, headers, body = read_answer(sock)
        assert status.startswith(b"HTTP/1.1 408")
        assert headers["connection"] == "close"
        assert json.loads(body)["data"]["errorCode"] == 1001
        assert read_all(sock) == b""


def test_an_idle_keep_alive_connection_is_closed(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(request(b"{}"))
        status, _, _ = read_answer(sock)
        assert status.startswith(b"HTTP/1.1 401")
        started = time.monotonic()
        assert read_all(sock) == b""
    assert time.monotonic() - started < 5


def test_connections_over_the_cap_are_refused_with_503(server: int) -> None:
    held = [connect(server) for _ in range(20)]
    try:
        time.sleep(0.2)
        with connect(server) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == "Error"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with connect(server) as sock:  # room again once they are gone
        sock.sendall(request(b"{}"))
        assert read_answer(sock)[0].startswith(b"HTTP/1.1 401")


def test_a_half_closed_client_still_gets_its_answer(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"LEDGERDESK_DATABASE_URL": database_url, "LEDGERDESK_DATA_DIR": str(tmp_path)}
    process = start(["serve", "--port", str(port)], port, env)
    try:
        for _ in range(5):
            with connect(port) as sock:
                sock.sendall(request(b'{"userId": 1, "apiKey": "x", "action": "getTicket"}'))
                sock.shutdown(socket.SHUT_WR)
                answer = read_all(sock)
            assert answer.startswith(b"HTTP/1.1 401 "), answer
        assert process.poll() is None
    finally:
        log = stop(process)
    assert "Traceback" not in log


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_the_allocator_is_tuned_to_give_large_bodies_back() -> None:
    assert tune_allocator() is True


def test_told_to_stop_it_is_unready_first_then_finishes_what_is_in_flight(
    database_url: str, tmp_path: Path
) -> None:
    """SIGTERM: /readyz says "stopping" while requests are still served (a load balancer
    takes it out), then the server stops accepting and answers the request in flight."""
    port = free_port()
    env = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_SHUTDOWN_DRAIN": "2",
    }
    process = start(["serve", "--port", str(port)], port, env)
    try:
        body = b'{"userId": 1, "apiKey": "x", "action": "getTicket"}'
        with connect(port) as in_flight:
            in_flight.sendall(request(body)[:-10])  # all but the body's last bytes
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with connect(port) as probe:
                probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
                status, _, ready = read_answer(probe)
            assert status.startswith(b"HTTP/1.1 503"), status
            assert json.loads(ready)["checks"]["process"] == "stopping"
            with connect(port) as probe:  # still serving meanwhile
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                assert read_answer(probe)[0].startswith(b"HTTP/1.1 200")
            time.sleep(2.2)  # the drain is over: no new connections now
            with pytest.raises(ConnectionRefusedError):
                connect(port).close()
            in_flight.sendall(request(body)[-10:])
            status, _, _ = read_answer(in_flight)
            assert status.startswith(b"HTTP/1.1 401"), status  # answered in full
        process.wait(timeout=15)
        assert time.monotonic() - began >= 2
    finally:
        log = stop(process)
    assert "Traceback" not in log


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_a_download_s_chunks_reuse_the_heap_instead_of_faulting_in_fresh_pages() -> None:
    """A chunk just under the mmap threshold, freed and made again (as a download reads
    its file): glibc's default trims the freed top of the heap each time, and the next
    chunk faults in every page again (about 240 faults a chunk)."""
    script = (
        "import resource\n"
        "from ledgerdesk.attachments.storage import CHUNK\n"
        "from ledgerdesk.process import tune_allocator\n"
        "assert tune_allocator()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(200):\n"
        "    chunk = b'x' * CHUNK\n"
        "    del chunk\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = int(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert faults < 200 * 240 // 10
