"""Webhook endpoints: registered, switched off and on, deleted, their secret rotated,
events replayed and a test sent; every change recorded as an event (``webhook.*``).

Staff act on every endpoint (``customer=None``); a customer only on their own
(``customer=<their id>``): someone else's is not found. A provider-wide endpoint
(``owner_id`` None) receives every customer's events; a customer's own receives only
events about that customer, of the types in ``CUSTOMER_TYPES`` (never an internal note,
staff's affairs or the seller's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from ledgerdesk.config import IPNetwork, Settings
from ledgerdesk.db.models import (
    DomainEvent,
    User,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)
from ledgerdesk.errors import InvalidState, NotFound, invalid
from ledgerdesk.events.log import EventLog, check_type_filter
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.webhooks.addresses import RefusedAddress, Resolver, check_url, resolve
from ledgerdesk.webhooks.signing import new_secret

# What a customer's own endpoint may receive: what happened to their tickets (not the
# internal notes), invoices, keys and account.
CUSTOMER_TYPES = frozenset(
    t.value
    for t in EventType
    if t.value.partition(".")[0]
    in ("ticket", "invoice", "credit_note", "payment", "api_key", "customer", "password")
    and t is not EventType.TICKET_NOTE_ADDED
    and t is not EventType.TICKET_ASSIGNED
    and t is not EventType.TICKET_TAGGED
    and t is not EventType.PASSWORD_LINK_CREATED
) | {
    EventType.SECOND_FACTOR_ENABLED.value,
    EventType.SECOND_FACTOR_DISABLED.value,
    EventType.SIGNIN_SUCCEEDED.value,
}
MAX_NOTE = 500
# A customer's own endpoints: each event about them goes to every one, so their number
# bounds how many requests one event can make ledgerdesk send.
MAX_CUSTOMER_ENDPOINTS = 10
MAX_TYPES = 50
# One replay makes at most this many deliveries: a wider range is refused (narrow it).
MAX_REPLAY = 10_000


@dataclass(frozen=True)
class EndpointView:
    id: int
    owner_id: int | None
    url: str
    event_types: tuple[str, ...]
    note: str
    enabled: bool
    disabled_reason: str | None
    ordered: bool
    failing_since: int | None
    previous_until: int | None
    created_at: int

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointView:
        return cls(
            id=row.id,
            owner_id=row.owner_id,
            url=row.url,
            event_types=tuple(row.event_types or ()),
            note=row.note,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            ordered=row.ordered,
            failing_since=row.failing_since,
            previous_until=row.previous_until,
            created_at=row.created_at,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "customerId": self.owner_id,
            "eventTypes": list(self.event_types),
            "note": self.note,
            "enabled": self.enabled,
            "disabledReason": self.disabled_reason,
            "ordered": self.ordered,
            "failingSince": _iso(self.failing_since),
            "previousSecretUntil": _iso(self.previous_until),
            "createdAt": _iso(self.created_at),
        }


@dataclass(frozen=True)
class WithSecret:
    """An endpoint and its signing secret, shown once: when made, and when rotated."""

    endpoint: EndpointView
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event_id: int
    event_type: str
    kind: str
    state: str
    attempts: int
    next_at: int  # ms
    created_at: int  # ms
    done_at: int | None  # ms
    last_status: int | None
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpointId": self.endpoint_id,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "kind": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "nextAttemptAt": _iso_ms(self.next_at) if self.state == "pending" else None,
            "createdAt": _iso_ms(self.created_at),
            "doneAt": _iso_ms(self.done_at),
            "lastStatus": self.last_status,
            "lastError": self.last_error,
        }


@dataclass(frozen=True)
class AttemptView:
    id: int
    delivery_id: int
    event_id: int
    at: int  # ms
    milliseconds: int
    status: int | None
    answer: str
    error: str | None
    address: str | None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deliveryId": self.delivery_id,
            "eventId": self.event_id,
            "at": _iso_ms(self.at),
            "milliseconds": self.milliseconds,
            "status": self.status,
            "answer": self.answer,
            "error": self.error,
            "address": self.address,
        }


def check_event_types(patterns: Iterable[str], *, for_customer: bool) -> tuple[str, ...]:
    """Type filters (``ticket.replied``, ``ticket.*``) an endpoint may have; a customer's
    may name only the types customers receive."""
    given = tuple(dict.fromkeys(p.strip() for p in patterns if p.strip()))
    if len(given) > MAX_TYPES:
        raise invalid("event_types", f"at most {MAX_TYPES} filters")
    try:
        check_type_filter(given)
    except ValueError as exc:
        raise invalid("event_types", str(exc)) from None
    if for_customer:
        for pattern in given:
            if not any(matches_type(pattern, t) for t in CUSTOMER_TYPES):
                known = ", ".join(sorted(CUSTOMER_TYPES))
                raise invalid("event_types", f"{pattern!r} is no type you receive ({known})")
    return given


def matches_type(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def receives(endpoint_types: Sequence[str], owner_id: int | None, event: Any) -> bool:
    """Whether an endpoint with these filters and owner receives ``event`` (anything
    with ``type`` and ``customer_id``)."""
    if owner_id is not None and (event.customer_id != owner_id or event.type not in CUSTOMER_TYPES):
        return False
    return not endpoint_types or any(matches_type(p, event.type) for p in endpoint_types)


class WebhookService:
    """Changes to endpoints, each recorded; ``customer`` is who acts when a customer does
    (None: staff, who may act on any endpoint)."""

    def __init__(
        self,
        work: Work,
        *,
        allowed: Sequence[IPNetwork] = (),
        resolver: Resolver | None = None,
        rotation_hours: int = 24,
    ) -> None:
        self.work = work
        self.session = work.session
        self.allowed = allowed
        self.resolver = resolver
        self.rotation_seconds = rotation_hours * 3600

    @classmethod
    def of(cls, work: Work, settings: Settings, resolver: Resolver | None = None) -> WebhookService:
        """The service as these settings have it (allowed networks, rotation grace)."""
        return cls(
            work,
            allowed=settings.webhook_allow_networks,
            resolver=resolver,
            rotation_hours=settings.webhook_rotation_hours,
        )

    def create(
        self,
        *,
        url: str,
        event_types: Iterable[str] = (),
        note: str = "",
        owner_id: int | None = None,
        ordered: bool = True,
    ) -> WithSecret:
        """A new endpoint (``owner_id``: a customer's own), enabled, receiving the events
        committed from now on; its secret is returned once."""
        if owner_id is not None:
            owner = self.session.get(User, owner_id)
            if owner is None or owner.is_staff:
                raise invalid("owner_id", f"user {owner_id} is no customer")
            owned = self.session.scalar(
                select(func.count()).where(WebhookEndpoint.owner_id == owner_id)
            )
            if (owned or 0) >= MAX_CUSTOMER_ENDPOINTS:
                raise invalid(
                    "url", f"at most {MAX_CUSTOMER_ENDPOINTS} endpoints; delete one first"
                )
        checked_url = self._check_url(url)
        types = check_event_types(event_types, for_customer=owner_id is not None)
        if len(note) > MAX_NOTE:
            raise invalid("note", f"at most {MAX_NOTE} characters")
        secret = new_secret()
        # Where the log ends, read while the relay's place is locked: the relay never
        # fans out or skips past events this endpoint should get (webhooks.relay).
        self.session.execute(
            select(WebhookCursor.id).where(WebhookCursor.id == 1).with_for_update()
        )
        row = WebhookEndpoint(
            owner_id=owner_id,
            url=checked_url,
            event_types=list(types),
            note=note.strip(),
            secret=secret,
            enabled=True,
            ordered=ordered,
            after_event_id=EventLog(self.session).last_id(),
            created_at=self.work.now,
        )
        self.session.add(row)
        self.session.flush()
        self._record(EventType.WEBHOOK_CREATED, row, ordered=ordered)
        return WithSecret(EndpointView.of(row), secret)

    def set_enabled(
        self, endpoint_id: int, enabled: bool, *, customer: int | None = None
    ) -> EndpointView:
        """Switch an endpoint on or off (a no-op when it already is). Switched off, it
        gets no new deliveries and its pending ones wait; switched on, they go on and
        its run of failures starts anew."""
        row = self._require(endpoint_id, customer)
        if row.enabled == enabled:
            return EndpointView.of(row)
        row.enabled = enabled
        row.disabled_reason = None if enabled else "disabled by hand"
        row.failing_since = None
        row.held_until = None
        row.holder = None
        self._record(EventType.WEBHOOK_ENABLED if enabled else EventType.WEBHOOK_DISABLED, row)
        return EndpointView.of(row)

    def delete(self, endpoint_id: int, *, customer: int | None = None) -> None:
        """Remove an endpoint with its deliveries and their log."""
        row = self._require(endpoint_id, customer)
        self._record(EventType.WEBHOOK_DELETED, row)
        self.session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == row.id))
        self.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
        self.session.delete(row)

    def rotate_secret(self, endpoint_id: int, *, customer: int | None = None) -> WithSecret:
        """A new secret; the previous one keeps signing too for the grace period, so the
        receiver can switch without missing a delivery."""
        row = self._require(endpoint_id, customer)
        secret = new_secret()
        row.previous_secret = row.secret if self.rotation_seconds else None
        row.previous_until = (
            self.work.now + self.rotation_seconds if self.rotation_seconds else None
        )
        row.secret = secret
        self._record(EventType.WEBHOOK_SECRET_ROTATED, row, graceUntil=_iso(row.previous_until))
        return WithSecret(EndpointView.of(row), secret)

    def replay(
        self,
        endpoint_id: int,
        *,
        event_id: int | None = None,
        since: int | None = None,
        until: int | None = None,
        customer: int | None = None,
    ) -> int:
        """Deliver one event again, or every event of a time range (unix seconds, until
        included; default: now) that the endpoint receives; how many deliveries. Replays
        go through the same relay; their failures never disable the endpoint."""
        row = self._require(endpoint_id, customer)
        if not row.enabled:
            raise InvalidState("The endpoint is disabled; enable it first.")
        if (event_id is None) == (since is None):
            raise invalid("event", "give one event, or the start of a time range")
        now_ms = self.work.now * 1000
        if event_id is not None:
            event = self.session.get(DomainEvent, event_id)
            if event is None or (customer is not None and event.customer_id != customer):
                raise invalid("event", f"there is no event {event_id}")
            if event.type == EventType.WEBHOOK_TESTED or not receives(
                row.event_types, row.owner_id, event
            ):
                raise invalid("event", f"endpoint {row.id} does not receive {event.type} events")
            self.session.execute(
                insert(WebhookDelivery).values(**_pending(row.id, event_id, "replay", now_ms))
            )
            count = 1
            details: dict[str, Any] = {"eventId": event_id}
        else:
            assert since is not None
            end = self.work.now if until is None else until
            if end < since:
                raise invalid("until", "is before since")
            chosen = self._range(row, since, end)
            count = self.session.scalar(select(func.count()).where(*chosen)) or 0
            if count > MAX_REPLAY:
                raise invalid(
                    "since",
                    f"the range holds {count} events; replay at most {MAX_REPLAY} at once",
                )
            columns = _pending(row.id, 0, "replay", now_ms)
            self.session.execute(
                insert(WebhookDelivery).from_select(
                    list(columns),
                    select(
                        *(
                            DomainEvent.id if name == "event_id" else literal(value)
                            for name, value in columns.items()
                        )
                    )
                    .where(*chosen)
                    .order_by(DomainEvent.id),
                )
            )
            details = {"since": _iso(since), "until": _iso(end)}
        self._record(EventType.WEBHOOK_REPLAYED, row, deliveries=count, **details)
        return count

    def send_test(self, endpoint_id: int, *, customer: int | None = None) -> None:
        """A ``webhook.tested`` event, delivered to this endpoint alone by the relay,
        like any other."""
        row = self._require(endpoint_id, customer)
        if not row.enabled:
            raise InvalidState("The endpoint is disabled; enable it first.")
        self._record(EventType.WEBHOOK_TESTED, row)

    def _range(self, row: WebhookEndpoint, since: int, until: int) -> list[Any]:
        """The conditions on ``events`` of a replayed range."""
        conditions = [
            DomainEvent.created_at >= since,
            DomainEvent.created_at <= until,
            DomainEvent.type != EventType.WEBHOOK_TESTED.value,
        ]
        if row.owner_id is not None:
            conditions += [
                DomainEvent.customer_id == row.owner_id,
                DomainEvent.type.in_(sorted(CUSTOMER_TYPES)),
            ]
        if row.event_types:
            exact = [p for p in row.event_types if not p.endswith(".*")]
            prefixes = [p[:-1] for p in row.event_types if p.endswith(".*")]
            conditions.append(
                or_(
                    *([DomainEvent.type.in_(exact)] if exact else []),
                    *(DomainEvent.type.like(f"{prefix}%") for prefix in prefixes),
                )
            )
        return conditions

    def _check_url(self, url: str) -> str:
        try:
            target = check_url(url, self.allowed)
            resolve(target, self.allowed, self.resolver)
        except RefusedAddress as exc:
            raise invalid("url", str(exc)) from None
        return url.strip()

    def _require(self, endpoint_id: int, customer: int | None) -> WebhookEndpoint:
        row = self.session.get(WebhookEndpoint, endpoint_id)
        if row is None or (customer is not None and row.owner_id != customer):
            raise NotFound(f"There is no webhook endpoint {endpoint_id}.")
        return row

    def _record(self, kind: EventType, row: WebhookEndpoint, **details: Any) -> None:
        record_endpoint_event(self.work, kind, row, **details)


class WebhookReader:
    """Endpoints, deliveries and attempts as the console, the portal and the CLI show
    them; ``customer`` limits them to a customer's own endpoints."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def endpoints(
        self, *, owner_id: int | None = None, everyone: bool = False
    ) -> list[EndpointView]:
        """Provider-wide endpoints (``owner_id`` None), a customer's own, or all."""
        statement = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
        if not everyone:
            statement = statement.where(
                WebhookEndpoint.owner_id.is_(None)
                if owner_id is None
                else WebhookEndpoint.owner_id == owner_id
            )
        return [EndpointView.of(row) for row in self.session.scalars(statement)]

    def endpoint(self, endpoint_id: int, *, customer: int | None = None) -> EndpointView:
        row = self.session.get(WebhookEndpoint, endpoint_id)
        if row is None or (customer is not None and row.owner_id != customer):
            raise NotFound(f"There is no webhook endpoint {endpoint_id}.")
        return EndpointView.of(row)

    def disabled_by_failures(self) -> list[EndpointView]:
        """Endpoints the relay switched off (410, or failing for days): the dashboard's."""
        statement = (
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.enabled.is_(False),
                WebhookEndpoint.disabled_reason != "disabled by hand",
            )
            .order_by(WebhookEndpoint.id)
        )
        return [EndpointView.of(row) for row in self.session.scalars(statement)]

    def deliveries(
        self,
        endpoint_id: int,
        *,
        failed: bool = False,
        event_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryView]:
        """An endpoint's deliveries, newest first (``failed``: only those given up on or
        whose last attempt failed)."""
        statement = (
            select(WebhookDelivery, DomainEvent.type)
            .join(DomainEvent, DomainEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        if failed:
            statement = statement.where(
                or_(
                    WebhookDelivery.state == "failed",
                    and_(WebhookDelivery.state == "pending", WebhookDelivery.attempts > 0),
                )
            )
        if event_id is not None:
            statement = statement.where(WebhookDelivery.event_id == event_id)
        return [_delivery(row, kind) for row, kind in self.session.execute(statement)]

    def delivery(self, delivery_id: int) -> DeliveryView | None:
        found = self.session.execute(
            select(WebhookDelivery, DomainEvent.type)
            .join(DomainEvent, DomainEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id == delivery_id)
        ).first()
        return None if found is None else _delivery(found[0], found[1])

    def attempts(self, delivery_id: int) -> list[AttemptView]:
        """A delivery's attempts, oldest first."""
        statement = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return [_attempt(row) for row in self.session.scalars(statement)]


def record_endpoint_event(
    work: Work, kind: EventType, row: WebhookEndpoint, **details: Any
) -> None:
    """A ``webhook.*`` event: the endpoint (never its secret) and what else it says."""
    work.record(
        kind,
        subject_id=row.id,
        customer_id=row.owner_id,
        payload={
            "endpointId": row.id,
            "url": row.url,
            "eventTypes": list(row.event_types or ()),
            **details,
        },
    )


def prune_log(session: Session, *, before_ms: int, limit: int) -> int:
    """Remove attempts made before ``before_ms`` and deliveries finished before it, at
    most ``limit`` of each; how many rows."""
    attempts = select(WebhookAttempt.id).where(WebhookAttempt.at < before_ms).limit(limit)
    removed = session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.id.in_(attempts.scalar_subquery()))
    ).rowcount  # type: ignore[attr-defined]
    finished = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.done_at < before_ms, WebhookDelivery.state != "pending")
        .limit(limit)
    )
    removed += session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.id.in_(finished.scalar_subquery()))
    ).rowcount  # type: ignore[attr-defined]
    return int(removed)


def _pending(endpoint_id: int, event_id: int, kind: str, now_ms: int) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "kind": kind,
        "state": "pending",
        "attempts": 0,
        "next_at": now_ms,
        "created_at": now_ms,
    }


def _delivery(row: WebhookDelivery, event_type: str) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=event_type,
        kind=row.kind,
        state=row.state,
        attempts=row.attempts,
        next_at=row.next_at,
        created_at=row.created_at,
        done_at=row.done_at,
        last_status=row.last_status,
        last_error=row.last_error,
    )


def _attempt(row: WebhookAttempt) -> AttemptView:
    return AttemptView(
        id=row.id,
        delivery_id=row.delivery_id,
        event_id=row.event_id,
        at=row.at,
        milliseconds=row.milliseconds,
        status=row.status,
        answer=row.answer,
        error=row.error,
        address=row.address,
    )


def _iso(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()
