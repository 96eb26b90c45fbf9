"""Reading the event log: in order after a position (consumers, ``admin events``), and
the history of one ticket, one customer, or everyone (the console, the audit trail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledgerdesk.db.models import DomainEvent
from ledgerdesk.events.types import EventType

# Every type a filter may name: the types, and ``<subject>.*`` for all of a subject's.
KNOWN_TYPES = frozenset(t.value for t in EventType)
KNOWN_PREFIXES = frozenset(t.value.partition(".")[0] for t in EventType)


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: str
    created_at: int
    door: str
    actor_kind: str
    actor_id: int | None
    key_id: int | None
    customer_id: int | None
    subject_id: int | None
    payload: dict[str, Any]
    client_address: str | None
    request_id: str | None

    @classmethod
    def of(cls, row: DomainEvent) -> EventRecord:
        return cls(
            id=row.id,
            type=row.type,
            created_at=row.created_at,
            door=row.door,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            key_id=row.key_id,
            customer_id=row.customer_id,
            subject_id=row.subject_id,
            payload=dict(row.payload or {}),
            client_address=row.client_address,
            request_id=row.request_id,
        )

    def as_json(self) -> dict[str, Any]:
        """The event as ``admin events --json`` prints it (and consumers receive it)."""
        return {
            "id": self.id,
            "type": self.type,
            "time": datetime.fromtimestamp(self.created_at, UTC).isoformat(),
            "door": self.door,
            "actor": {"kind": self.actor_kind, "userId": self.actor_id, "keyId": self.key_id},
            "customerId": self.customer_id,
            "subjectId": self.subject_id,
            "data": self.payload,
            "clientAddress": self.client_address,
            "requestId": self.request_id,
        }


def check_type_filter(patterns: Sequence[str]) -> tuple[str, ...]:
    """Type filters as given (``ticket.replied``, ``ticket.*``); ValueError names one
    that is no type."""
    for pattern in patterns:
        head, dot, tail = pattern.partition(".")
        if pattern in KNOWN_TYPES or (dot and tail == "*" and head in KNOWN_PREFIXES):
            continue
        known = ", ".join(sorted(KNOWN_TYPES))
        raise ValueError(f"{pattern!r} is no event type (known: {known}; or subject.*)")
    return tuple(patterns)


class EventLog:
    """The ``events`` table, read."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def after(
        self,
        after_id: int,
        *,
        types: Sequence[str] = (),
        customer_id: int | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events with ids above ``after_id``, oldest first. Ids are committed in their
        order (see events.work), so reading on from the last id seen skips none."""
        statement = (
            select(DomainEvent)
            .where(DomainEvent.id > after_id)
            .order_by(DomainEvent.id)
            .limit(limit)
        )
        if types:
            statement = statement.where(_types(types))
        if customer_id is not None:
            statement = statement.where(DomainEvent.customer_id == customer_id)
        return [EventRecord.of(row) for row in self.session.scalars(statement)]

    def last_id(self) -> int:
        """The id of the newest event (0 when there is none)."""
        newest = self.session.scalar(
            select(DomainEvent.id).order_by(DomainEvent.id.desc()).limit(1)
        )
        return int(newest or 0)

    def history(
        self, *, subject: str, subject_id: int, also: Sequence[int] = (), limit: int = 200
    ) -> list[EventRecord]:
        """What happened to one ticket (``subject="ticket"``), invoice or key, oldest first;
        ``also``: more subjects whose history belongs to it (tickets merged into it)."""
        statement = (
            select(DomainEvent)
            .where(
                DomainEvent.subject_id.in_([subject_id, *also]),
                DomainEvent.type.like(f"{subject}.%"),
            )
            .order_by(DomainEvent.id.desc())
            .limit(limit)
        )
        return [EventRecord.of(row) for row in reversed(self.session.scalars(statement).all())]

    def of_customer(self, customer_id: int, *, limit: int = 200) -> list[EventRecord]:
        """Everything that concerned one customer, newest first."""
        statement = (
            select(DomainEvent)
            .where(DomainEvent.customer_id == customer_id)
            .order_by(DomainEvent.id.desc())
            .limit(limit)
        )
        return [EventRecord.of(row) for row in self.session.scalars(statement)]

    def of_types_since(
        self, types: Sequence[str], since: int, *, limit: int = 200_000
    ) -> list[EventRecord]:
        """Events of these types from ``since`` on, oldest first (reports)."""
        statement = (
            select(DomainEvent)
            .where(DomainEvent.type.in_(list(types)), DomainEvent.created_at >= since)
            .order_by(DomainEvent.id)
            .limit(limit)
        )
        return [EventRecord.of(row) for row in self.session.scalars(statement)]

    def newest(self, *, user_id: int | None, since: int | None, limit: int) -> list[EventRecord]:
        """The newest events (the audit trail): of one user, who acted or was concerned."""
        statement = select(DomainEvent).order_by(DomainEvent.id.desc()).limit(limit)
        if user_id is not None:
            statement = statement.where(
                or_(DomainEvent.actor_id == user_id, DomainEvent.customer_id == user_id)
            )
        if since is not None:
            statement = statement.where(DomainEvent.created_at >= since)
        return [EventRecord.of(row) for row in self.session.scalars(statement)]


def _types(patterns: Sequence[str]) -> Any:
    exact = [p for p in patterns if not p.endswith(".*")]
    prefixes = [p[:-1] for p in patterns if p.endswith(".*")]
    conditions = [DomainEvent.type.in_(exact)] if exact else []
    conditions += [DomainEvent.type.like(f"{prefix}%") for prefix in prefixes]
    return or_(*conditions)
