"""The relay: every event of the log to the endpoints that asked for it, at least once.

Each round, in its own short transactions:

1. **Fan out.** Events after the relay's place in the log (``webhook_cursor``) become one
   pending delivery per endpoint that receives them, and the place moves on, in one
   transaction: an event gets its deliveries exactly once. The log's ids commit in order
   (events.work), so reading on after the last id skips none. One relay at a time
   (PostgreSQL: the cursor row ``FOR UPDATE SKIP LOCKED``; SQLite: its one writer).
2. **Claim** what is due, with a lease: an ordered endpoint as a whole (its oldest
   pending deliveries, in order; nothing of it while its oldest waits for a retry), an
   unordered one's deliveries one by one (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
   relays on any number of machines never claim the same). A relay that dies leaves its
   claims to whoever finds the lease over.
3. **Deliver**, outside any transaction: resolve the host, check the address, POST the
   signed body (webhooks.transport).
4. **Record** every attempt, and the delivery's new state: delivered, retried after the
   schedule's next delay (with up to a tenth more, at random, and never sooner than the
   receiver's ``Retry-After``), or given up. ``410 Gone`` disables the endpoint; so does
   failing, without a success, for ``LEDGERDESK_WEBHOOK_FAILING_DAYS`` (replays and tests
   do not count).

The relay wakes when an event commits (``events.work.on_commit`` in this process;
PostgreSQL's ``LISTEN`` for every process on every machine), when a retry falls due,
and at least every ``poll`` seconds (leases that ran out, other SQLite processes).
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets as token
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from anyio import to_thread
from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session

from ledgerdesk import __version__, metrics
from ledgerdesk.config import IPNetwork
from ledgerdesk.consumers import Consumer, now_ms
from ledgerdesk.db.models import (
    DomainEvent,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)
from ledgerdesk.db.outage import is_outage
from ledgerdesk.events.log import EventLog, EventRecord
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.addresses import RefusedAddress, Resolver, check_url, literal, resolve
from ledgerdesk.webhooks.payloads import body_of
from ledgerdesk.webhooks.service import receives, record_endpoint_event
from ledgerdesk.webhooks.signing import signature_headers
from ledgerdesk.webhooks.transport import Attempt, attempt

log = logging.getLogger("ledgerdesk.webhooks")

FAN_OUT_EVENTS = 1000  # events read per fan-out transaction
ORDERED_BATCH = 10  # an ordered endpoint's deliveries claimed at once, sent one by one
LEASE_MARGIN_MS = 5_000
MAX_RETRY_AFTER = 86_400.0
IDLE_CURSOR_SECONDS = 10.0
CONNECTIONS_PER_ENDPOINT = 8
IDLE_CLIENT_SECONDS = 300.0
JITTER = 0.1
MAX_ERROR = 500


@dataclass(frozen=True)
class Due:
    """A claimed delivery."""

    delivery_id: int
    event_id: int
    kind: str
    attempts: int


@dataclass(frozen=True)
class Batch:
    """An endpoint's claimed deliveries, with what sending them needs."""

    endpoint_id: int
    url: str
    signing_secrets: tuple[str, ...]
    ordered: bool
    deliveries: tuple[Due, ...]
    bodies: dict[int, bytes]
    lease_until: int  # ms


@dataclass(frozen=True)
class Outcome:
    due: Due
    result: Attempt
    at: int  # ms
    address: str | None


# -- the transactions -------------------------------------------------------------------


def fan_out(session: Session, now_ms: int) -> int:
    """Give the next events of the log their deliveries; how many events were read (0:
    none waiting, or another relay is at it)."""
    cursor = session.scalars(
        select(WebhookCursor).where(WebhookCursor.id == 1).with_for_update(skip_locked=True)
    ).first()
    if cursor is None:
        if session.get(WebhookCursor, 1) is not None:
            return 0  # another relay is at it
        # The row is gone (a database emptied by hand): start again where the oldest
        # endpoint starts; nothing before an endpoint's start is sent to it anyway.
        start = session.scalar(select(func.min(WebhookEndpoint.after_event_id)))
        if start is None:
            start = EventLog(session).last_id()
        cursor = WebhookCursor(id=1, last_event_id=start)
        session.add(cursor)
    events = session.execute(
        select(DomainEvent.id, DomainEvent.type, DomainEvent.customer_id, DomainEvent.subject_id)
        .where(DomainEvent.id > cursor.last_event_id)
        .order_by(DomainEvent.id)
        .limit(FAN_OUT_EVENTS)
    ).all()
    if not events:
        return 0
    endpoints = session.execute(
        select(
            WebhookEndpoint.id,
            WebhookEndpoint.owner_id,
            WebhookEndpoint.event_types,
            WebhookEndpoint.after_event_id,
        ).where(WebhookEndpoint.enabled.is_(True))
    ).all()
    rows = []
    for event in events:
        if event.type == EventType.WEBHOOK_TESTED:
            targets = [e.id for e in endpoints if e.id == event.subject_id]
        else:
            targets = [
                e.id
                for e in endpoints
                if event.id > e.after_event_id and receives(e.event_types or (), e.owner_id, event)
            ]
        rows += [
            {
                "endpoint_id": endpoint_id,
                "event_id": event.id,
                "kind": "test" if event.type == EventType.WEBHOOK_TESTED else "event",
                "state": "pending",
                "attempts": 0,
                "next_at": now_ms,
                "created_at": now_ms,
            }
            for endpoint_id in targets
        ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    cursor.last_event_id = events[-1].id
    return len(events)


def any_endpoint(session: Session) -> bool:
    """Whether any endpoint is enabled (anything pending for a disabled one waits)."""
    found = session.scalar(
        select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True)).limit(1)
    )
    return found is not None


def skip_ahead(session: Session) -> None:
    """With no endpoint enabled, move the relay's place to the end of the log (no
    endpoint receives an event from before it was made, or while it was disabled).

    The cursor row is locked first, as ``WebhookService.create`` locks it before it
    reads where the log ends: a new endpoint is either seen here or starts after."""
    cursor = session.scalars(
        select(WebhookCursor).where(WebhookCursor.id == 1).with_for_update()
    ).first()
    if any_endpoint(session):
        return
    newest = EventLog(session).last_id()
    if cursor is None:  # the row is gone (a database emptied by hand)
        session.add(WebhookCursor(id=1, last_event_id=newest))
    else:
        cursor.last_event_id = max(cursor.last_event_id, newest)


def claim(
    session: Session,
    now_ms: int,
    *,
    holder: str,
    timeout: float,
    limit: int,
    rotation_now: int,
) -> list[Batch]:
    """Claim up to ``limit`` due deliveries (see the module's text)."""
    claimed: dict[int, list[Due]] = {}
    leases: dict[int, int] = {}
    pending_of = WebhookDelivery.state == "pending"
    ordered = session.scalars(
        select(WebhookEndpoint.id)
        .where(
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.ordered.is_(True),
            (WebhookEndpoint.held_until.is_(None)) | (WebhookEndpoint.held_until <= now_ms),
            exists().where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, pending_of),
        )
        .order_by(WebhookEndpoint.held_until.nulls_first(), WebhookEndpoint.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookEndpoint)
    ).all()
    room = limit
    for endpoint_id in ordered:
        if room <= 0:
            break
        head = session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.event_id,
                WebhookDelivery.kind,
                WebhookDelivery.attempts,
                WebhookDelivery.next_at,
            )
            .where(WebhookDelivery.endpoint_id == endpoint_id, pending_of)
            .order_by(WebhookDelivery.id)
            .limit(min(ORDERED_BATCH, room))
        ).all()
        if not head:
            continue
        if head[0].next_at > now_ms:  # the oldest waits for its retry: so do the others
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id)
                .values(held_until=head[0].next_at, holder=None)
            )
            continue
        taken = []
        for row in head:
            if row.next_at > now_ms:
                break
            taken.append(Due(row.id, row.event_id, row.kind, row.attempts))
        lease = now_ms + round(timeout * 1000) * len(taken) + LEASE_MARGIN_MS
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(held_until=lease, holder=holder)
        )
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([d.delivery_id for d in taken]))
            .values(lease_until=lease, holder=holder)
        )
        claimed[endpoint_id] = taken
        leases[endpoint_id] = lease
        room -= len(taken)
    if room > 0:
        lease = now_ms + round(timeout * 1000) + LEASE_MARGIN_MS
        loose = session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.event_id,
                WebhookDelivery.kind,
                WebhookDelivery.attempts,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                pending_of,
                WebhookDelivery.next_at <= now_ms,
                (WebhookDelivery.lease_until.is_(None)) | (WebhookDelivery.lease_until <= now_ms),
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.ordered.is_(False),
            )
            .order_by(WebhookDelivery.next_at, WebhookDelivery.id)
            .limit(room)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        ).all()
        if loose:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([one.id for one in loose]))
                .values(lease_until=lease, holder=holder)
            )
        for one in loose:
            claimed.setdefault(one.endpoint_id, []).append(
                Due(one.id, one.event_id, one.kind, one.attempts)
            )
            leases[one.endpoint_id] = lease
    if not claimed:
        return []
    endpoints = {
        row.id: row
        for row in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(list(claimed)))
        )
    }
    event_ids = {due.event_id for dues in claimed.values() for due in dues}
    bodies = {
        row.id: body_of(EventRecord.of(row))
        for row in session.scalars(select(DomainEvent).where(DomainEvent.id.in_(event_ids)))
    }
    batches = []
    for endpoint_id, dues in claimed.items():
        endpoint = endpoints[endpoint_id]
        in_use = [endpoint.secret]
        if endpoint.previous_secret and (endpoint.previous_until or 0) > rotation_now:
            in_use.append(endpoint.previous_secret)
        batches.append(
            Batch(
                endpoint_id=endpoint_id,
                url=endpoint.url,
                signing_secrets=tuple(in_use),
                ordered=endpoint.ordered,
                deliveries=tuple(dues),
                bodies=bodies,
                lease_until=leases[endpoint_id],
            )
        )
    return batches


@dataclass
class Policy:
    """How failures are answered: the schedule, the failing days, the random jitter."""

    schedule: tuple[float, ...]
    failing_days: int
    rng: Callable[[], float] = random.random

    def next_delay(self, attempts: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after ``attempts`` have failed (None: give up)."""
        if attempts >= len(self.schedule):
            return None
        delay = self.schedule[attempts] * (1 + JITTER * self.rng())
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay


def record(
    work: Work, batch: Batch, outcomes: Sequence[Outcome], *, holder: str, policy: Policy
) -> list[str]:
    """Write a batch's attempts and what follows from them (see the module's text).
    Returns what became of each delivery this relay still held: delivered, retrying
    (tried again later) or failed (given up)."""
    session = work.session
    now_ms = work.now * 1000
    if not outcomes:  # nothing was tried: let the endpoint go
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == batch.endpoint_id, WebhookEndpoint.holder == holder)
            .values(held_until=None, holder=None)
        )
        return []
    ids = [o.due.delivery_id for o in outcomes]
    mine = set(
        session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.holder == holder)
            .with_for_update()
        )
    )
    still_there = mine | set(
        session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids)))
    )
    if not still_there:
        return []  # the endpoint was deleted meanwhile
    endpoint = session.get(WebhookEndpoint, batch.endpoint_id)
    session.execute(
        insert(WebhookAttempt),
        [
            {
                "delivery_id": o.due.delivery_id,
                "endpoint_id": batch.endpoint_id,
                "event_id": o.due.event_id,
                "at": o.at,
                "milliseconds": min(round(o.result.seconds * 1000), 2**31 - 1),
                "status": o.result.status,
                "answer": o.result.answer.decode("utf-8", "replace"),
                "error": None if o.result.error is None else o.result.error[:MAX_ERROR],
                "address": o.address,
            }
            for o in outcomes
            if o.due.delivery_id in still_there
        ],
    )
    gate: int | None = None
    disable: str | None = None
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    became: list[str] = []
    for outcome in outcomes:
        due, result = outcome.due, outcome.result
        if due.delivery_id not in mine:
            continue  # the lease ran out and another relay has it now
        attempts = due.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status": result.status,
            "last_error": None if result.error is None else result.error[:MAX_ERROR],
            "lease_until": None,
            "holder": None,
        }
        if result.succeeded:
            became.append("delivered")
            values |= {"state": "delivered", "done_at": now_ms}
            if endpoint is not None:
                endpoint.failing_since = None
        else:
            delay = (
                None if result.status == 410 else policy.next_delay(attempts, result.retry_after)
            )
            if delay is None:
                became.append("failed")
                values |= {"state": "failed", "done_at": now_ms}
            else:
                became.append("retrying")
                values["next_at"] = now_ms + round(delay * 1000)
                gate = values["next_at"] if gate is None else gate
            if result.status == 410:
                disable = "answered 410 Gone"
            elif endpoint is not None and due.kind == "event":
                endpoint.failing_since = endpoint.failing_since or outcome.at // 1000
                days = (work.now - endpoint.failing_since) / 86_400
                if days >= policy.failing_days:
                    since = datetime.fromtimestamp(endpoint.failing_since, UTC)
                    disable = (
                        f"failing since {since:%Y-%m-%d %H:%M} UTC "
                        f"({policy.failing_days} days without a success)"
                    )
        changes.setdefault(tuple(sorted(values)), []).append({"id": due.delivery_id, **values})
    for rows in changes.values():  # one statement per shape of change (ORM bulk update)
        session.execute(update(WebhookDelivery), rows)
    if endpoint is None:
        return became
    if batch.ordered and endpoint.holder == holder:
        endpoint.held_until = gate
        endpoint.holder = None
    if disable is not None and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = disable
        endpoint.held_until = None
        endpoint.holder = None
        record_endpoint_event(work, EventType.WEBHOOK_DISABLED, endpoint, reason=disable)
        log.warning("webhook endpoint %d disabled: %s", endpoint.id, disable)
    return became


def next_due(session: Session, now_ms: int) -> int | None:
    """When the next pending delivery falls due after now (ms), if any."""
    return session.scalar(
        select(WebhookDelivery.next_at)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_at > now_ms)
        .order_by(WebhookDelivery.next_at)
        .limit(1)
    )


# -- the loop ---------------------------------------------------------------------------


class Relay(Consumer):
    """Runs the rounds in one process: in ``ledgerdesk serve`` (unless
    ``LEDGERDESK_WEBHOOK_RELAY=false``) and alone in ``ledgerdesk worker``."""

    name = "webhook relay"

    def __init__(
        self,
        runtime: Runtime,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock_ms: Callable[[], int] = now_ms,
        policy: Policy | None = None,
        poll: float | None = None,
    ) -> None:
        super().__init__(runtime, poll)
        settings = runtime.settings
        self.resolver = resolver
        self.transport = transport
        self.clock_ms = clock_ms
        self.policy = policy or Policy(
            settings.webhook_retry_schedule, settings.webhook_failing_days
        )
        self.allowed: tuple[IPNetwork, ...] = settings.webhook_allow_networks
        self.holder = token.token_hex(8)
        self.delivered = 0
        self._in_flight = 0
        self._idle_until = 0.0
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._used: dict[int, float] = {}

    async def closing(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()

    def _client(self, endpoint_id: int) -> httpx.AsyncClient:
        """The endpoint's own connections: a few, kept alive between deliveries (one
        pool for every endpoint would be searched through on every request)."""
        self._used[endpoint_id] = time.monotonic()
        client = self._clients.get(endpoint_id)
        if client is None:
            size = min(self.settings.webhook_concurrency, CONNECTIONS_PER_ENDPOINT)
            client = httpx.AsyncClient(
                transport=self.transport,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                timeout=self.settings.webhook_timeout,
            )
            self._clients[endpoint_id] = client
        return client

    async def round(self, tasks: anyio.abc.TaskGroup) -> float:
        """One round; how long to wait for the next (0: at once, more is waiting)."""
        if not await self.in_thread(self._any_endpoint):
            # Nothing to deliver to: no write per commit; the place in the log moves on
            # now and then, so that a first endpoint does not start far behind.
            if time.monotonic() >= self._idle_until:
                self._idle_until = time.monotonic() + IDLE_CURSOR_SECONDS
                await self.in_thread(self._skip_ahead)
            return self.poll
        while await self.in_thread(self._fan_out) == FAN_OUT_EVENTS:
            pass
        await self._close_idle_clients()
        room = self.settings.webhook_concurrency - self._in_flight
        batches = await self.in_thread(self._claim, room) if room > 0 else []
        for batch in batches:
            self._in_flight += len(batch.deliveries)
            tasks.start_soon(self._deliver, self._client(batch.endpoint_id), batch)
        if sum(len(b.deliveries) for b in batches) >= room > 0:
            return 0
        due: int | None = await self.in_thread(self._next_due)
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (due - self.clock_ms()) / 1000))

    async def _close_idle_clients(self) -> None:
        """Connections of endpoints nothing went to for a while (deleted, quiet)."""
        idle_since = time.monotonic() - IDLE_CLIENT_SECONDS
        for endpoint_id, used in list(self._used.items()):
            if used < idle_since:  # longer ago than any batch can take
                del self._used[endpoint_id]
                client = self._clients.pop(endpoint_id, None)
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()

    async def _deliver(self, client: httpx.AsyncClient, batch: Batch) -> None:
        outcomes: list[Outcome] = []
        try:
            if batch.ordered:
                for due in batch.deliveries:
                    if self.clock_ms() + self.settings.webhook_timeout * 1000 > batch.lease_until:
                        break  # the lease would end mid-attempt: leave the rest
                    outcome = await self._send(client, batch, due)
                    outcomes.append(outcome)
                    if not outcome.result.succeeded:
                        break  # the others wait for this one
            else:

                async def one(due: Due) -> None:
                    outcomes.append(await self._send(client, batch, due))

                async with anyio.create_task_group() as sending:
                    for due in batch.deliveries:
                        sending.start_soon(one, due)
            if outcomes or batch.ordered:
                await self.in_thread(self._record, batch, outcomes)
            self.delivered += sum(1 for o in outcomes if o.result.succeeded)
        except Exception as exc:
            if is_outage(exc):
                log.warning("webhook relay: could not record deliveries (%s)", type(exc).__name__)
            else:
                log.exception("webhook relay: could not record deliveries")
        finally:
            self._in_flight -= len(batch.deliveries)
            self.poke()

    async def _send(self, client: httpx.AsyncClient, batch: Batch, due: Due) -> Outcome:
        at = self.clock_ms()
        body = batch.bodies[due.event_id]
        try:
            target = check_url(batch.url, self.allowed)
            if self.resolver is None and literal(target.host) is None:
                address = await to_thread.run_sync(resolve, target, self.allowed, None)
            else:
                address = resolve(target, self.allowed, self.resolver)
        except RefusedAddress as exc:
            return Outcome(due, Attempt(None, 0.0, b"", f"refused: {exc}", None), at, None)
        headers = signature_headers(str(due.event_id), at // 1000, body, batch.signing_secrets)
        result = await attempt(
            client,
            target,
            address,
            headers,
            body,
            timeout=self.settings.webhook_timeout,
            version=__version__,
        )
        return Outcome(due, result, at, str(address))

    # The transactions, each run in the relay's thread.

    def _any_endpoint(self) -> bool:
        with self.runtime.transaction(write=False) as (session, _):
            return any_endpoint(session)

    def _skip_ahead(self) -> None:
        with self.runtime.transaction(write=True) as (session, _):
            skip_ahead(session)

    def _fan_out(self) -> int:
        with self.runtime.transaction(write=True) as (session, _):
            return fan_out(session, self.clock_ms())

    def _claim(self, room: int) -> list[Batch]:
        with self.runtime.transaction(write=True) as (session, _):
            return claim(
                session,
                self.clock_ms(),
                holder=self.holder,
                timeout=self.settings.webhook_timeout,
                limit=room,
                rotation_now=self.clock_ms() // 1000,
            )

    def _record(self, batch: Batch, outcomes: list[Outcome]) -> None:
        assert self.policy is not None
        with self.runtime.work(Actor.SYSTEM, Origin("system")) as work:
            work.now = self.clock_ms() // 1000
            became = record(work, batch, outcomes, holder=self.holder, policy=self.policy)
        for outcome in became:  # counted once committed
            metrics.webhook_attempts.labels(outcome).inc()

    def _next_due(self) -> int | None:
        with self.runtime.transaction(write=False) as (session, _):
            return next_due(session, self.clock_ms())
