"""``AsyncClient``: the protocol over an asynchronous httpx client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from ledgerdesk.client import _protocol as protocol
from ledgerdesk.client._errors import APIError, TransportError
from ledgerdesk.client._models import (
    DocumentType,
    Download,
    Invoice,
    InvoiceStatus,
    Priority,
    Thread,
    Ticket,
    TicketStatus,
    TurnState,
)
from ledgerdesk.client._protocol import AttachmentSource, Call, Credentials, RetryPolicy

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
CHUNK = 256 * 1024


class AsyncClient:
    """The asynchronous twin of ``Client``: a ledgerdesk (or any i3D v2 ``administration``) server.

    >>> async with AsyncClient("https://api.example.net", user_id=1, api_key="Xb8k...") as client:
    ...     for ticket in await client.tickets(status=TicketStatus.OPEN):
    ...         print(ticket.id, ticket.title)

    Without arguments, the base URL and credentials come from ``LEDGERDESK_URL``,
    ``LEDGERDESK_USER_ID`` and ``LEDGERDESK_API_KEY``. Requests time out (30 s, 5 s to
    connect) and are retried with backoff on transport errors, 429 and 5xx answers.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        user_id: int | None = None,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.credentials = Credentials.resolve(base_url, user_id, api_key)
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- invoices --------------------------------------------------------------------------

    async def invoice_ids(
        self,
        status: InvoiceStatus | None = None,
        *,
        since: date | None = None,
        until: date | None = None,
        document_type: DocumentType | str | None = DocumentType.INVOICE,
    ) -> list[int]:
        """Ids of the invoices created between ``since`` and ``until`` (inclusive), oldest
        first; the server's default is the last 30 days. ``status=None`` means all;
        ``document_type`` is invoices (the default), credit notes, or ``None`` for both.

        >>> client.invoice_ids(InvoiceStatus.UNPAID, since=date(2026, 1, 1))
        """
        return await self._call(
            protocol.invoice_ids(status, since, until, document_type), protocol.read_invoice_ids
        )

    async def invoice(self, invoice_id: int) -> Invoice:
        """One invoice, with exact ``Decimal`` amounts.

        >>> client.invoice(42).amount_net
        Decimal('423.50')
        """
        return await self._call(
            Call("getInvoiceDetails", {"invoiceId": invoice_id}), protocol.read_invoice
        )

    # -- tickets ---------------------------------------------------------------------------

    async def tickets(self, status: TicketStatus | None = None) -> list[Ticket]:
        """The account's tickets, newest first; ``status=None`` means all.

        >>> [t.title for t in client.tickets(TicketStatus.OPEN)]
        """
        return await self._call(protocol.tickets(status), protocol.read_tickets)

    async def ticket(self, ticket_id: int) -> Thread:
        """A ticket with every reply (and its attachments' names and sizes), oldest first.

        >>> client.ticket(7).replies[-1].content
        """
        return await self._call(Call("getTicket", {"ticketId": ticket_id}), protocol.read_thread)

    async def ticket_state(self, ticket_id: int) -> TurnState:
        """Whose turn it is on a ticket (support's, or yours to answer), and until when
        support waits for you.

        >>> (await client.ticket_state(7)).turn
        """
        call = Call("getTicketState", {"ticketId": ticket_id})
        return await self._call(call, protocol.read_turn)

    async def create_ticket(
        self,
        title: str,
        content: str,
        *,
        reference: str = "",
        priority: Priority = Priority.NORMAL,
        attachments: Sequence[AttachmentSource] = (),
    ) -> int:
        """Open a ticket; returns its id. Attachments are paths or ``Attachment``s, sent
        as multipart and streamed from disk. Safe to retry: one ticket, however often
        the request is sent (an Idempotency-Key is made for the call).

        >>> client.create_ticket("Disk almost full", "Can you add one?", attachments=["df.txt"])
        """
        call = protocol.create_ticket(title, content, reference, priority, attachments)
        return await self._call(call, protocol.read_ticket_id)

    async def reply(
        self,
        ticket_id: int,
        content: str,
        *,
        attachments: Sequence[AttachmentSource] = (),
    ) -> int:
        """Reply to a ticket (a closed one is reopened); returns the ticket id.

        >>> client.reply(7, "Logs attached.", attachments=[Path("dmesg.log")])
        """
        return await self._call(
            protocol.reply(ticket_id, content, attachments), protocol.read_ticket_id
        )

    async def close_ticket(self, ticket_id: int) -> None:
        """Close a ticket (closing a closed one changes nothing).

        >>> client.close_ticket(7)
        """
        await self._call(Call("closeTicket", {"ticketId": ticket_id}), protocol.read_nothing)

    async def reopen_ticket(self, ticket_id: int) -> None:
        """Reopen a closed ticket (a forcibly closed one: ``ConflictError``).

        >>> client.reopen_ticket(7)
        """
        await self._call(Call("reopenTicket", {"ticketId": ticket_id}), protocol.read_nothing)

    async def download_attachment(
        self,
        ticket_id: int,
        attachment_id: int,
        to: str | os.PathLike[str] | IO[bytes],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Download:
        """Write an attachment to a path or an open binary file, streamed: the file is
        never held in memory. A partial file is removed if the transfer fails.
        ``progress(done, total)`` is called after each chunk.

        >>> client.download_attachment(7, 3, "traceroute.txt").size
        """
        call = protocol.download(ticket_id, attachment_id)
        return await self._with_retries(call, lambda: self._download_once(call, to, progress))

    async def download_invoice(
        self,
        invoice_id: int,
        format: str,
        to: str | os.PathLike[str] | IO[bytes],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Download:
        """Write an invoice's or a credit note's document to a path or an open binary
        file: ``"pdf"`` (PDF/A-3 with the CII embedded, Factur-X), ``"ubl"`` or ``"cii"``
        (EN 16931 e-invoices).

        >>> client.download_invoice(42, "pdf", "F26-0000042.pdf").size
        """
        call = protocol.invoice_document(invoice_id, format)
        return await self._with_retries(call, lambda: self._download_once(call, to, progress))

    # -- sending ---------------------------------------------------------------------------

    async def _call(self, call: Call, read: protocol.Reader[T]) -> T:
        return read(await self._with_retries(call, lambda: self._send_once(call)))

    async def _with_retries(self, call: Call, attempt: Callable[[], Awaitable[T]]) -> T:
        tries = 0
        while True:
            try:
                return await attempt()
            except (APIError, TransportError) as error:
                wait = self.retry.delay(tries, error) if call.replayable else None
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                tries += 1

    async def _send_once(self, call: Call) -> dict[str, Any]:
        with call.request(self.credentials) as request:
            try:
                response = await self._http.request(**request)
            except httpx.TransportError as error:
                raise TransportError(str(error) or type(error).__name__) from error
        return protocol.read_envelope(response.status_code, response.headers, response.content)

    async def _download_once(
        self,
        call: Call,
        to: str | os.PathLike[str] | IO[bytes],
        progress: Callable[[int, int], None] | None,
    ) -> Download:
        with call.request(self.credentials) as request:
            try:
                async with self._http.stream(**request) as response:
                    if not protocol.is_download(response.headers):
                        await response.aread()
                        protocol.read_envelope(
                            response.status_code, response.headers, response.content
                        )
                        raise APIError(
                            "the server answered an envelope, not a file",
                            code=None,
                            status=response.status_code,
                        )
                    chunks = protocol.acounted(
                        response.aiter_bytes(CHUNK), response.headers, progress
                    )
                    size = await _write(chunks, to)
                    return Download(
                        protocol.download_name(response.headers),
                        response.headers.get("content-type", "application/octet-stream"),
                        size,
                    )
            except httpx.TransportError as error:
                raise TransportError(str(error) or type(error).__name__) from error


async def _write(chunks: AsyncIterator[bytes], to: str | os.PathLike[str] | IO[bytes]) -> int:
    # Local file writes of 256 KiB chunks are brief; a thread per chunk would cost more.
    if not isinstance(to, str | os.PathLike):
        return sum([to.write(chunk) or 0 async for chunk in chunks])
    path = Path(to)
    try:
        with path.open("wb") as handle:
            return sum([handle.write(chunk) async for chunk in chunks])
    except BaseException:
        path.unlink(missing_ok=True)
        raise
