"""Typed, immutable results: dates as ``date``, times as aware ``datetime``, money as
``Decimal``, statuses and priorities as enums."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class InvoiceStatus(enum.Enum):
    PAID = "paid"
    UNPAID = "unpaid"


class TicketStatus(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    FORCIBLY_CLOSED = 2


class Priority(enum.IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    HIGHEST = 4


@dataclass(frozen=True)
class Invoice:
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


@dataclass(frozen=True)
class Ticket:
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
    id: int
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Reply:
    author: str
    user_id: int
    created: datetime
    title: str
    content: str
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True)
class Thread:
    ticket: Ticket
    replies: tuple[Reply, ...]


@dataclass(frozen=True)
class Download:
    """What was written by ``download_attachment``."""

    name: str
    content_type: str
    size: int
