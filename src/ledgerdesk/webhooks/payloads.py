"""What a delivery carries: one JSON body per event, the same on every attempt.

``{"type": "ticket.replied", "timestamp": "2026-11-30T12:00:00+00:00", "data": {...}}``
where ``data`` names the event (``eventId``, the same as the ``webhook-id`` header),
what it happened to (``subject``, ``subjectId``), the customer it concerns
(``customerId``, null for staff's own affairs), who acted (``actor``), through which
door, and the event's own ``details`` (docs/webhooks.md lists them per type).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ledgerdesk.events.log import EventRecord
from ledgerdesk.events.types import EventType


def body_of(event: EventRecord) -> bytes:
    return orjson.dumps(
        {
            "type": event.type,
            "timestamp": datetime.fromtimestamp(event.created_at, UTC).isoformat(),
            "data": data_of(event),
        }
    )


def data_of(event: EventRecord) -> dict[str, Any]:
    try:
        subject = EventType(event.type).subject
    except ValueError:
        subject = event.type.partition(".")[0]
    return {
        "eventId": event.id,
        "subject": subject,
        "subjectId": event.subject_id,
        "customerId": event.customer_id,
        "actor": {"kind": event.actor_kind, "userId": event.actor_id, "keyId": event.key_id},
        "door": event.door,
        "details": event.payload,
    }
