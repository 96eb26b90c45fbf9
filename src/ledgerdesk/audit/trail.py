"""The audit trail as people read it (``ledgerdesk admin audit``, the console's Audit
page): every change (the event log) and every write or authentication that failed or
was replayed (``audit_events``), merged newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ledgerdesk.audit.repository import AuditRepository
from ledgerdesk.events.log import EventLog, EventRecord


def trail(
    session: Session, *, user_id: int | None, since: int | None, limit: int
) -> list[dict[str, Any]]:
    """At most ``limit`` lines, newest first (of ``user_id``, from ``since`` on)."""
    changes = EventLog(session).newest(user_id=user_id, since=since, limit=limit)
    others = AuditRepository(session).list(user_id=user_id, since=since, limit=limit)
    rows = [_change_row(e) for e in changes] + [
        {
            "log": "audit",
            "id": e.id,
            "time": datetime.fromtimestamp(e.created_at, UTC).isoformat(),
            "source": e.source,
            "userId": e.user_id,
            "keyId": e.key_id,
            "clientAddress": e.client_address,
            "action": e.action,
            "targetId": e.target_id,
            "outcome": e.outcome,
            "errorCode": e.error_code,
            "requestId": e.request_id,
        }
        for e in others
    ]
    # Both logs newest first, merged by time (a change before a failure of the same second).
    rows.sort(key=lambda r: (r["time"], r["log"] == "events", r["id"]), reverse=True)
    return rows[:limit]


def _change_row(event: EventRecord) -> dict[str, Any]:
    """A change from the event log as a line of the audit trail: who acted (the user,
    else the customer concerned), the event's type as the action, its subject."""
    return {
        "log": "events",
        "id": event.id,
        "time": datetime.fromtimestamp(event.created_at, UTC).isoformat(),
        "source": event.door,
        "userId": event.actor_id if event.actor_id is not None else event.customer_id,
        "keyId": event.key_id,
        "clientAddress": event.client_address,
        "action": event.type,
        "targetId": event.subject_id,
        "outcome": "ok",
        "errorCode": None,
        "requestId": event.request_id,
    }
