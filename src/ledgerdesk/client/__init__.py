"""The ledgerdesk SDK: ``Client`` and ``AsyncClient`` for the i3D v2 ``administration`` API.

Needs only httpx. Example::

    from ledgerdesk.client import Client, TicketStatus

    with Client() as client:  # LEDGERDESK_URL, LEDGERDESK_USER_ID, LEDGERDESK_API_KEY
        for ticket in client.tickets(TicketStatus.OPEN):
            print(ticket.id, ticket.title, ticket.last_updated)
        ticket_id = client.create_ticket("Disk almost full", "Add one?", attachments=["df.txt"])
"""

from ledgerdesk.client._async import AsyncClient
from ledgerdesk.client._errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidRequestError,
    LedgerdeskError,
    NotFoundError,
    ParamError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    WebhookVerificationError,
)
from ledgerdesk.client._models import (
    AttachmentInfo,
    DocumentType,
    Download,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Priority,
    Reply,
    Thread,
    Ticket,
    TicketStatus,
    TurnState,
)
from ledgerdesk.client._protocol import Attachment, RetryPolicy
from ledgerdesk.client._sync import Client

__all__ = [
    "APIError",
    "AsyncClient",
    "Attachment",
    "AttachmentInfo",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "DocumentType",
    "Download",
    "InvalidRequestError",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LedgerdeskError",
    "NotFoundError",
    "ParamError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Priority",
    "RateLimitError",
    "Reply",
    "RetryPolicy",
    "ServerError",
    "Thread",
    "Ticket",
    "TicketStatus",
    "TransportError",
    "TurnState",
    "WebhookVerificationError",
]
