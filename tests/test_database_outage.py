"""A database that hangs or fails (issue: what people trip over): every request and
/readyz hung with a hung PostgreSQL, and an outage logged a traceback per request."""

from __future__ import annotations

import errno
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ledgerdesk.attachments import incoming
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets import actions as ticket_actions
from tests.conftest import fresh_postgres_database
from tests.factories import make_customer
from tests.servers import free_port, start, stop
from tests.support import Caller, assert_error, call, json_attachment

ENDPOINT = "/api/rest/v2/administration"


class FreezingProxy:
    """A TCP proxy to the database that can stop passing bytes: a server that hangs
    (its connections stay open, nothing comes back)."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target  # (host, port), or a Unix socket's path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if isinstance(self.target, str):
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.target)
            else:
                server = socket.create_connection(self.target)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self.closed.is_set():
                if self.frozen.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (a hung server is PostgreSQL's failure:
    SQLite is a file, whose failure is a full disk, below)."""
    with fresh_postgres_database(postgres_admin_url) as url:
        yield url


def test_a_hung_database_costs_requests_a_clean_503_and_the_log_one_line_a_second(
    postgres_url: str, tmp_path: Path
) -> None:
    url = make_url(postgres_url)
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):  # pgserver's socket
        proxy = FreezingProxy(f"{socket_dir}/.s.PGSQL.{url.port or 5432}")
    else:
        proxy = FreezingProxy((url.host or "127.0.0.1", url.port or 5432))
    through = (
        url.difference_update_query(["host"])
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )
    runtime = Runtime.build(Settings(database_url=postgres_url, data_dir=tmp_path))
    caller = make_customer(runtime)
    runtime.engine.dispose()
    port = free_port()
    env = {
        "LEDGERDESK_DATABASE_URL": through,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_DB_TIMEOUT": "2",
        "LEDGERDESK_DB_CONNECT_TIMEOUT": "1",
    }
    process = start(["serve", "--port", str(port)], port, env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.post(ENDPOINT, json=caller.body("getTicketOverview")).status_code == 200
            proxy.frozen.set()
            started = time.monotonic()
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["problem"] == "the checks took longer than 3 s"
            assert time.monotonic() - started < 5
            assert client.get("/healthz").status_code == 200  # the process itself answers

            def ask(n: int) -> tuple[int, int, float]:
                began = time.monotonic()
                body = (
                    caller.body("getTicketOverview")
                    if n % 2
                    else caller.body("createTicket", title="t", content="c")
                )
                answer = client.post(ENDPOINT, json=body)
                code = answer.json()["data"]["errorCode"]
                return answer.status_code, code, time.monotonic() - began

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(ask, range(24)))
            assert {(status, code) for status, code, _ in answers} == {(503, 5000)}
            assert max(took for _, _, took in answers) < 12
            proxy.frozen.clear()
    finally:
        proxy.frozen.clear()
        log = stop(process)
        proxy.close()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "database unavailable" in line]
    assert 1 <= len(lines) <= 15
    assert any("more requests failed alike" in line for line in lines)


# -- in process: a full disk ------------------------------------------------------------


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


@pytest.mark.anyio
async def test_a_full_disk_is_a_clean_503_logged_once(
    client: httpx.AsyncClient,
    caller: Caller,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def full(*args: object, **kwargs: object) -> object:
        raise OperationalError("INSERT ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(ticket_actions.TicketService, "create", full)
    with caplog.at_level(logging.ERROR):
        for _ in range(30):
            answer = await call(client, caller, "createTicket", title="t", content="c")
            assert_error(answer, 5000, 503)
            assert answer.headers["retry-after"] == "5"
            assert "disk" not in answer.text  # nothing of the cause reaches the client
    lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(lines) == 1
    assert "database or disk is full" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.anyio
async def test_no_space_for_an_upload_is_a_clean_503(
    client: httpx.AsyncClient, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(self: object, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(incoming.IncomingWriter, "write", no_space)
    answer = await call(
        client,
        caller,
        "createTicket",
        title="t",
        content="c",
        attachments=[json_attachment("a.txt", b"hello")],
    )
    assert_error(answer, 5000, 503)
