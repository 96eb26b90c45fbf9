"""Typed, immutable results: dates as ``date``, times as aware ``datetime``, money as
``Decimal``, statuses and priorities as enums."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class InvoiceStatus(enum.Enum):
    """Whether an invoice is paid; ``Client.invoice_ids`` also takes ``"paid"``/``"unpaid"``."""

    PAID = "paid"
    UNPAID = "unpaid"


class DocumentType(enum.Enum):
    """An invoice or a credit note (which corrects an invoice); ``Client.invoice_ids``
    also takes ``"invoice"``, ``"creditNote"`` and ``"all"``."""

    INVOICE = "invoice"
    CREDIT_NOTE = "creditNote"


@dataclass(frozen=True)
class InvoiceLine:
    """A line of an invoice: ``amount_excl_vat`` is ``quantity`` x ``unit_price``, rounded
    to the currency; ``vat_category`` is UNCL 5305 (S, Z, E, AE, G)."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_category: str
    vat_percentage: Decimal
    amount_excl_vat: Decimal


class TicketStatus(enum.IntEnum):
    """A ticket's status: closed (the customer may reopen it), open, or forcibly closed
    by staff (final). ``Client.tickets`` also takes ``"open"``, ``"closed"``..."""

    CLOSED = 0
    OPEN = 1
    FORCIBLY_CLOSED = 2


class Priority(enum.IntEnum):
    """How urgent a ticket is; HIGHEST means downtime."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    HIGHEST = 4


@dataclass(frozen=True)
class Invoice:
    """An invoice. ``amount_net`` includes VAT; money is exact (``Decimal``).

    >>> invoice.amount_net, invoice.vat, invoice.vat_percentage
    (Decimal('423.50'), Decimal('73.50'), Decimal('21.00'))
    """

    id: int
    number: str
    title: str
    description: str
    created_on: date
    pay_before: date
    amount_net: Decimal  # including VAT
    vat: Decimal
    vat_percentage: Decimal
    status: InvoiceStatus
    # ledgerdesk's additions (a server that does not send them: the defaults).
    document_type: DocumentType = DocumentType.INVOICE
    currency: str | None = None
    amount_excl_vat: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    corrects_invoice_id: int | None = None
    lines: tuple[InvoiceLine, ...] = ()


@dataclass(frozen=True)
class Ticket:
    """A ticket's overview: ``code`` is the number people quote; times are aware UTC
    ``datetime``s (``last_updated`` moves with every reply)."""

    id: int
    code: int
    user_id: int
    title: str
    reference: str
    status: TicketStatus
    priority: Priority
    created: datetime
    status_updated: datetime
    last_updated: datetime


@dataclass(frozen=True)
class AttachmentInfo:
    """A file of a reply: its id (for ``download_attachment``), name, type and size."""

    id: int
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Reply:
    """One message of a thread; ``author`` is the writer's real name (staff or you)."""

    author: str
    user_id: int
    created: datetime
    title: str
    content: str
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True)
class Thread:
    """A ticket and all of its replies, oldest first."""

    ticket: Ticket
    replies: tuple[Reply, ...]


@dataclass(frozen=True)
class TurnState:
    """Whose turn it is on a ticket: ``support`` answers next, or the ``customer`` (you)
    has support's answer to read; ``None`` when the ticket is closed. ``waiting_until``:
    until when support waits for your answer before taking it up again."""

    ticket_id: int
    status: TicketStatus
    turn: str | None
    waiting_until: datetime | None


@dataclass(frozen=True)
class Download:
    """What was written by ``download_attachment`` or ``download_invoice``."""

    name: str
    content_type: str
    size: int
