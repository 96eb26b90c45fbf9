"""The SDK against a real server: every action, sync and async, errors, retries, streaming."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ledgerdesk.client import (
    AsyncClient,
    Attachment,
    AuthenticationError,
    Client,
    ConfigurationError,
    ConflictError,
    DocumentType,
    InvalidRequestError,
    InvoiceStatus,
    NotFoundError,
    Priority,
    RateLimitError,
    RetryPolicy,
    TicketStatus,
    TransportError,
)
from ledgerdesk.client import _protocol as protocol
from ledgerdesk.tickets.service import TicketService
from tests.client.conftest import MB, Server, serve
from tests.factories import system_work

pytestmark = pytest.mark.anyio


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, user_id=server.caller.user_id, api_key=server.caller.api_key) as c:
        yield c


def force_close(server: Server, ticket_id: int) -> None:
    with system_work(server.runtime) as work:
        TicketService(work).force_close(ticket_id)


def test_invoices_come_typed_and_exact(client: Client, server: Server) -> None:
    ids = client.invoice_ids()
    assert list(server.invoice_ids) == ids
    assert client.invoice_ids(InvoiceStatus.PAID) == []
    assert client.invoice_ids(since=date.today() - timedelta(days=1), until=date.today()) == []
    invoice = client.invoice(ids[0])
    assert invoice.amount_net == Decimal("423.50")
    assert (invoice.vat, invoice.vat_percentage) == (Decimal("73.50"), Decimal("21.00"))
    assert invoice.status is InvoiceStatus.UNPAID
    assert isinstance(invoice.created_on, date)
    assert (invoice.document_type, invoice.currency, invoice.amount_due) == (
        DocumentType.INVOICE,
        "EUR",
        Decimal("423.50"),
    )
    (line,) = invoice.lines
    assert (line.quantity, line.unit_price, line.vat_category) == (1, Decimal(350), "S")
    assert client.invoice_ids(document_type=DocumentType.CREDIT_NOTE) == []
    assert client.invoice_ids(document_type=None) == ids


async def test_invoice_documents_download_sync_and_async(
    client: Client, server: Server, tmp_path: Path
) -> None:
    invoice_id = server.invoice_ids[0]
    written = client.download_invoice(invoice_id, "pdf", tmp_path / "invoice.pdf")
    assert written.content_type == "application/pdf"
    assert (tmp_path / "invoice.pdf").read_bytes().startswith(b"%PDF-")
    assert written.name.endswith(".pdf")
    into = io.BytesIO()
    async with AsyncClient(
        server.url, user_id=server.caller.user_id, api_key=server.caller.api_key
    ) as aclient:
        await aclient.download_invoice(invoice_id, "cii", into)
    assert b"CrossIndustryInvoice" in into.getvalue()
    with pytest.raises(ValueError, match="format must be one of pdf, ubl, cii"):
        client.download_invoice(invoice_id, "docx", tmp_path / "x")


def test_a_ticket_round_trip_with_attachments(
    client: Client, server: Server, tmp_path: Path
) -> None:
    log = tmp_path / "dmesg.log"
    log.write_bytes(b"eth0: link down\n" * 100)
    ticket_id = client.create_ticket(
        "Link down",
        "Since 07:12.",
        reference="INC-1",
        priority=Priority.HIGHEST,
        attachments=[log, Attachment.from_bytes("note.txt", b"hello")],
    )
    client.reply(
        ticket_id,
        "And a dump.",
        attachments=[Attachment.from_file("d.bin", io.BytesIO(b"\x00\x01"))],
    )
    thread = client.ticket(ticket_id)
    assert (thread.ticket.title, thread.ticket.priority, thread.ticket.reference) == (
        "Link down",
        Priority.HIGHEST,
        "INC-1",
    )
    assert thread.ticket.created.tzinfo is UTC
    assert [r.content for r in thread.replies] == ["Since 07:12.", "And a dump."]
    names = [a.name for r in thread.replies for a in r.attachments]
    assert names == ["dmesg.log", "note.txt", "d.bin"]
    first, note = thread.replies[0].attachments
    assert (first.content_type, note.content_type) == ("application/octet-stream", "text/plain")
    target = tmp_path / "out.log"
    written = client.download_attachment(ticket_id, first.id, target)
    assert (written.name, written.size) == ("dmesg.log", log.stat().st_size)
    assert target.read_bytes() == log.read_bytes()
    buffer = io.BytesIO()
    client.download_attachment(ticket_id, thread.replies[1].attachments[0].id, buffer)
    assert buffer.getvalue() == b"\x00\x01"
    assert any(t.id == ticket_id for t in client.tickets(TicketStatus.OPEN))
    client.close_ticket(ticket_id)
    assert client.ticket(ticket_id).ticket.status is TicketStatus.CLOSED
    client.reopen_ticket(ticket_id)
    assert client.ticket(ticket_id).ticket.status is TicketStatus.OPEN


def test_errors_map_to_exceptions_with_code_status_and_details(
    client: Client, server: Server
) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.ticket(999_999)
    assert (missing.value.code, missing.value.status) == (3001, 404)
    assert missing.value.request_id
    with pytest.raises(InvalidRequestError) as invalid:
        client.create_ticket(" ", "content")
    assert invalid.value.code == 1003
    assert [e.property for e in invalid.value.errors] == ["title"]
    ticket_id = client.create_ticket("T", "C")
    force_close(server, ticket_id)
    with pytest.raises(ConflictError) as conflict:
        client.reopen_ticket(ticket_id)
    assert conflict.value.code == 3002
    with (
        Client(server.url, user_id=server.caller.user_id, api_key="W" * 20) as wrong,
        pytest.raises(AuthenticationError) as denied,
    ):
        wrong.tickets()
    assert denied.value.code == 2001
    assert "W" * 20 not in str(denied.value)
    with pytest.raises(NotFoundError):
        client.download_attachment(ticket_id, 999_999, io.BytesIO())


def test_credentials_come_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERDESK_URL", server.url)
    monkeypatch.setenv("LEDGERDESK_USER_ID", str(server.caller.user_id))
    monkeypatch.setenv("LEDGERDESK_API_KEY", server.caller.api_key)
    with Client() as client:
        assert client.invoice_ids() == list(server.invoice_ids)
    monkeypatch.delenv("LEDGERDESK_API_KEY")
    with pytest.raises(ValueError, match="LEDGERDESK_API_KEY"):
        Client()


class DropFirstAnswer(httpx.BaseTransport):
    """A network that loses the first answer after the server has acted on the request."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.dropped == 0:
            self.dropped += 1
            response.close()
            raise httpx.ReadError("connection reset after the request was sent")
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_write_whose_answer_was_lost_is_retried_and_done_once(server: Server) -> None:
    network = DropFirstAnswer()
    retry = RetryPolicy(backoff=0.01)
    with Client(
        server.url,
        user_id=server.caller.user_id,
        api_key=server.caller.api_key,
        transport=network,
        retry=retry,
    ) as client:
        ticket_id = client.create_ticket("Once only", "Sent twice, stored once.")
        titles = [t.title for t in client.tickets()]
    assert network.dropped == 1
    assert titles.count("Once only") == 1
    assert ticket_id > 0


def test_transport_errors_are_retried_then_raised() -> None:
    with (
        Client(
            "http://127.0.0.1:9", user_id=1, api_key="x" * 20, retry=RetryPolicy(backoff=0.01)
        ) as client,
        pytest.raises(TransportError),
    ):
        client.tickets()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(
        tmp_path_factory.mktemp("limited"),
        LEDGERDESK_RATE_LIMIT="2",
        LEDGERDESK_RATE_LIMIT_WINDOW="2",
    )


def test_a_429_is_retried_after_retry_after(limited: Server) -> None:
    with Client(
        limited.url, user_id=limited.caller.user_id, api_key=limited.caller.api_key
    ) as client:
        answers = [client.invoice_ids() for _ in range(4)]  # the 3rd waits for the window
    assert answers == [list(limited.invoice_ids)] * 4
    impatient = RetryPolicy(max_retries=0)
    with Client(
        limited.url,
        user_id=limited.caller.user_id,
        api_key=limited.caller.api_key,
        retry=impatient,
    ) as client:
        errors = []
        for _ in range(4):  # two fit in a window, whenever it began
            try:
                client.invoice_ids()
            except RateLimitError as error:
                errors.append(error)
    limited_error = errors[0]
    assert limited_error.retry_after is not None
    assert 0 < limited_error.retry_after <= 2


def test_a_50_mb_download_is_streamed(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for i in range(50):
            handle.write(hashlib.sha256(str(i).encode()).digest() * (MB // 32))
    ticket_id = client.create_ticket("Big", "A 50 MB dump.", attachments=[big])
    attachment = client.ticket(ticket_id).replies[0].attachments[0]
    target = tmp_path / "copy.bin"
    tracemalloc.start()
    try:
        client.download_attachment(ticket_id, attachment.id, target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target.stat().st_size == 50 * MB
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    print(f"50 MB download: peak traced memory {peak / MB:.2f} MB")
    assert peak < 20 * MB, f"download held {peak / MB:.1f} MB"


async def test_the_async_client_does_every_action(server: Server, tmp_path: Path) -> None:
    async with AsyncClient(
        server.url, user_id=server.caller.user_id, api_key=server.caller.api_key
    ) as client:
        ids = await client.invoice_ids(InvoiceStatus.UNPAID)
        assert ids == list(server.invoice_ids)
        assert (await client.invoice(ids[-1])).number.startswith("F")
        ticket_id = await client.create_ticket(
            "Async", "From a coroutine.", attachments=[Attachment.from_bytes("a.txt", b"async")]
        )
        assert await client.reply(ticket_id, "More.") == ticket_id
        thread = await client.ticket(ticket_id)
        attachment = thread.replies[0].attachments[0]
        buffer = io.BytesIO()
        download = await client.download_attachment(ticket_id, attachment.id, buffer)
        assert (buffer.getvalue(), download.name) == (b"async", "a.txt")
        await client.close_ticket(ticket_id)
        await client.reopen_ticket(ticket_id)
        assert ticket_id in [t.id for t in await client.tickets(TicketStatus.OPEN)]
        state = await client.ticket_state(ticket_id)
        assert (state.ticket_id, state.turn, state.waiting_until) == (ticket_id, "support", None)
        with pytest.raises(NotFoundError):
            await client.ticket(999_999)


def test_whose_turn_it_is(server: Server, client: Client) -> None:
    ticket_id = client.create_ticket("Turn", "Whose turn?")
    assert client.ticket_state(ticket_id).turn == "support"
    client.close_ticket(ticket_id)
    closed = client.ticket_state(ticket_id)
    assert (closed.status, closed.turn) == (TicketStatus.CLOSED, None)
    with pytest.raises(NotFoundError):
        client.ticket_state(999_999)


def test_the_sdk_needs_nothing_of_the_server() -> None:
    """A customer's script imports the SDK with httpx alone: no server module is loaded."""
    probe = (
        "import sys, ledgerdesk.client; "
        "server = ('sqlalchemy', 'starlette', 'uvicorn', 'pydantic', 'alembic', 'limits', "
        "'redis', 'psycopg'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(server)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_missing_credentials_say_which_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEDGERDESK_URL", "LEDGERDESK_USER_ID", "LEDGERDESK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as raised:
        Client(user_id=1)
    assert raised.value.missing == (
        ("base_url", "LEDGERDESK_URL"),
        ("api_key", "LEDGERDESK_API_KEY"),
    )
    assert "LEDGERDESK_URL" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        Client("localhost:8080", user_id=1, api_key="A" * 20)


def test_enums_and_dates_may_be_named_plainly_or_are_refused_clearly() -> None:
    assert protocol.tickets("open").params == {"status": 1}
    assert protocol.tickets("FORCIBLY_CLOSED").params == {"status": 2}
    assert protocol.tickets(0).params == {"status": 0}
    assert protocol.invoice_ids("paid", "2026-01-31", date(2026, 2, 1)).params == {
        "status": 1,
        "dateStart": "31-01-2026",
        "dateEnd": "01-02-2026",
    }
    assert protocol.create_ticket("t", "c", "", "high", ()).params["priorityId"] == 3
    with pytest.raises(TypeError, match=r"status must be a TicketStatus \(or one of 'closed'"):
        protocol.tickets("opn")
    with pytest.raises(TypeError, match="since must be a date or a YYYY-MM-DD string"):
        protocol.invoice_ids(None, "31-01-2026", None)
    with pytest.raises(TypeError, match="priority must be a Priority"):
        protocol.create_ticket("t", "c", "", 9, ())
    with pytest.raises(TypeError):
        protocol.tickets(True)  # type: ignore[arg-type]


def test_the_sdk_is_typed_for_its_users() -> None:
    """A py.typed marker: mypy reads the SDK's annotations instead of seeing Any."""
    from importlib.resources import files

    assert (files("ledgerdesk") / "py.typed").is_file()
    from ledgerdesk.client import _errors, _models

    for module in (_errors, _models):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__ == module.__name__:
                assert value.__doc__, f"{name} has no docstring"
