"""The relay against a real receiver (tests/webhooks/receiver.py) that verifies every
delivery with the reference ``standardwebhooks`` package, on both databases."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from ledgerdesk.config import Settings
from ledgerdesk.db.models import WebhookDelivery, WebhookEndpoint
from ledgerdesk.events.work import Actor
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.relay import Relay, claim
from ledgerdesk.webhooks.service import WebhookReader, WebhookService, WithSecret
from tests.factories import make_ticket, make_user, recorded_events, staff_reply, system_work
from tests.webhooks.receiver import Receiver, Script

pytestmark = pytest.mark.anyio

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
FAST = (0.0, 0.05, 0.05, 0.05)


class Millis:
    """The relay's clock, moved by hand where a test needs days to pass."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        import time

        return int(time.time() * 1000) + self.offset


@pytest.fixture
def hooks(settings: Settings) -> Iterator[Runtime]:
    """A runtime on the system's clock (the relay's leases and retries are real time)."""
    runtime = Runtime.build(
        settings.with_overrides(
            webhook_allow_networks=LOOPBACK, webhook_retry_schedule=FAST, webhook_timeout=3.0
        )
    )
    yield runtime
    runtime.engine.dispose()


@asynccontextmanager
async def receiving(script: Script | None = None, delay: float = 0.0) -> AsyncIterator[Receiver]:
    receiver = Receiver(secrets=[], delay=delay)
    if script is not None:
        receiver.script = script
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver


@asynccontextmanager
async def relaying(runtime: Runtime, **options: Any) -> AsyncIterator[Relay]:
    relay = Relay(runtime, **options)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay.run)
        await asyncio.sleep(0)
        yield relay
        tasks.cancel_scope.cancel()


def endpoint(runtime: Runtime, receiver: Receiver, **options: Any) -> WithSecret:
    """An endpoint for the receiver; by default for customers' and tickets' events (an
    endpoint taking every type gets its own ``webhook.created`` first)."""
    options.setdefault("event_types", ["customer.*", "ticket.*"])
    with system_work(runtime) as work:
        made = WebhookService.of(work, runtime.settings).create(url=receiver.url, **options)
    receiver.secrets.append(made.secret)
    return made


def deliveries(runtime: Runtime, endpoint_id: int) -> list[WebhookDelivery]:
    with runtime.transaction(write=False) as (session, _):
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(WebhookDelivery.id)
            )
        )


def attempts_of(runtime: Runtime, endpoint_id: int) -> int:
    """The attempts of the endpoint's first delivery (0 while there is none)."""
    rows = deliveries(runtime, endpoint_id)
    return rows[0].attempts if rows else 0


def state_of(runtime: Runtime, endpoint_id: int) -> str | None:
    rows = deliveries(runtime, endpoint_id)
    return rows[0].state if rows else None


def delivered(runtime: Runtime, endpoint_id: int) -> int:
    return sum(1 for row in deliveries(runtime, endpoint_id) if row.state == "delivered")


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_every_event_is_delivered_once_signed_as_standard_webhooks(hooks: Runtime) -> None:
    async with receiving() as receiver:
        made = endpoint(hooks, receiver, event_types=[])
        customer = make_user(hooks, name="Ann")
        tickets = [make_ticket(hooks, customer, title=f"T{n}") for n in range(5)]
        # Its own creation first (an endpoint gets what is committed from its making on).
        events = recorded_events(hooks)
        assert [e.type for e in events[:2]] == ["webhook.created", "customer.created"]
        async with relaying(hooks):
            await receiver.wait_for(len(events))
            await until(lambda: delivered(hooks, made.endpoint.id) == len(events))
    assert not receiver.unverified
    assert receiver.ids() == [str(e.id) for e in events]
    first = receiver.verified[2]
    assert first.event["type"] == "ticket.created"
    assert first.event["data"]["subjectId"] == tickets[0]
    assert first.event["data"]["customerId"] == customer
    assert first.event["data"]["details"]["ticketId"] == tickets[0]
    assert first.headers["user-agent"].startswith("ledgerdesk/")
    assert first.headers["webhook-signature"].startswith("v1,")
    rows = deliveries(hooks, made.endpoint.id)
    assert [r.state for r in rows] == ["delivered"] * len(events)
    with hooks.transaction(write=False) as (session, _):
        tried = WebhookReader(session).attempts(rows[0].id)
    assert [(a.status, a.answer, a.address) for a in tried] == [(200, "thanks", "127.0.0.1")]


def attempts_counted() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value(
            "ledgerdesk_webhook_deliveries_total", {"outcome": outcome}
        )
        or 0.0
        for outcome in ("delivered", "retrying", "failed")
    }


async def test_failures_are_retried_with_the_same_id_until_they_succeed(hooks: Runtime) -> None:
    def flaky(_: str, tries: int) -> tuple[int, str, bytes]:
        return (500, "", b"oops") if tries < 3 else (200, "", b"ok")

    before = attempts_counted()
    async with receiving(flaky) as receiver:
        made = endpoint(hooks, receiver)
        make_user(hooks, name="Ann")
        async with relaying(hooks):
            await receiver.wait_for(1)
            await until(lambda: delivered(hooks, made.endpoint.id) == 1)
    assert len(receiver.requests) == 3
    # /metrics counts each attempt by what became of it.
    after = attempts_counted()
    assert {k: after[k] - before[k] for k in after} == {
        "delivered": 1,
        "retrying": 2,
        "failed": 0,
    }
    assert len({r.webhook_id for r in receiver.requests}) == 1
    [row] = deliveries(hooks, made.endpoint.id)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    with hooks.transaction(write=False) as (session, _):
        statuses = [(a.status, a.answer) for a in WebhookReader(session).attempts(row.id)]
    assert statuses == [(500, "oops"), (500, "oops"), (200, "ok")]


async def test_an_ordered_endpoint_gets_events_in_order_though_the_first_is_retried(
    hooks: Runtime,
) -> None:
    first: list[str] = []

    def first_fails_twice(webhook_id: str, tries: int) -> tuple[int, str, bytes]:
        if not first:
            first.append(webhook_id)
        return (503, "", b"") if webhook_id == first[0] and tries < 3 else (200, "", b"")

    async with receiving(first_fails_twice) as receiver:
        endpoint(hooks, receiver)
        customer = make_user(hooks, name="Ann")
        for n in range(8):
            make_ticket(hooks, customer, title=f"T{n}")
        async with relaying(hooks):
            await receiver.wait_for(9)
    ids = [int(i) for i in receiver.ids()]
    assert ids == sorted(ids)
    # Nothing after the first went out while it was being retried.
    assert [r.webhook_id for r in receiver.requests[:3]] == [first[0]] * 3


async def test_an_unordered_endpoint_does_not_wait_for_a_retry(hooks: Runtime) -> None:
    def first_fails(webhook_id: str, tries: int) -> tuple[int, str, bytes]:
        return (500, "", b"") if tries == 1 and webhook_id == min_id[0] else (200, "", b"")

    min_id: list[str] = [""]
    async with receiving(first_fails) as receiver:
        slow = Settings.model_validate(
            {**hooks.settings.model_dump(), "webhook_retry_schedule": (0.0, 1.0)}
        )
        runtime = Runtime.build(slow)
        try:
            endpoint(runtime, receiver, ordered=False)
            customer = make_user(runtime, name="Ann")
            min_id[0] = str(recorded_events(runtime)[-1].id)
            make_ticket(runtime, customer)
            async with relaying(runtime):
                await receiver.wait_for(2)
        finally:
            runtime.engine.dispose()
    # The second event was delivered while the first waited a second for its retry.
    assert receiver.ids() == [str(int(min_id[0]) + 1), min_id[0]]


async def test_retry_after_is_honoured(hooks: Runtime) -> None:
    def busy(_: str, __: int) -> tuple[int, str, bytes]:
        return 503, "Retry-After: 120\r\n", b"later"

    clock = Millis()
    async with receiving(busy) as receiver:
        made = endpoint(hooks, receiver)
        make_user(hooks, name="Ann")
        async with relaying(hooks, clock_ms=clock):
            await until(lambda: len(receiver.requests) == 1)
            await until(lambda: attempts_of(hooks, made.endpoint.id) == 1)
    [row] = deliveries(hooks, made.endpoint.id)
    assert row.state == "pending"
    assert row.next_at - clock() >= 115_000


async def test_410_gone_disables_the_endpoint_at_once(hooks: Runtime) -> None:
    async with receiving(lambda _, __: (410, "", b"")) as receiver:
        made = endpoint(hooks, receiver)
        make_user(hooks, name="Ann")
        async with relaying(hooks):
            await until(lambda: not view(hooks, made.endpoint.id).enabled)
    assert view(hooks, made.endpoint.id).disabled_reason == "answered 410 Gone"
    assert deliveries(hooks, made.endpoint.id)[0].state == "failed"
    disabled = [e for e in recorded_events(hooks) if e.type == "webhook.disabled"]
    assert [(e.door, e.actor_kind, e.payload["reason"]) for e in disabled] == [
        ("system", "system", "answered 410 Gone")
    ]


async def test_days_of_failures_disable_the_endpoint_and_replays_do_not_count(
    hooks: Runtime,
) -> None:
    clock = Millis()
    async with receiving(lambda _, __: (500, "", b"")) as receiver:
        made = endpoint(hooks, receiver)
        customer = make_user(hooks, name="Ann")
        event_id = recorded_events(hooks)[-1].id
        with system_work(hooks) as work:
            WebhookService.of(work, hooks.settings).replay(made.endpoint.id, event_id=event_id)
        async with relaying(hooks, clock_ms=clock):
            await until(lambda: len(receiver.requests) >= 2)
            # Replays failing never start the count; the event's own failures do.
            await until(lambda: view(hooks, made.endpoint.id).failing_since is not None)
            clock.offset = 6 * 86_400_000
            make_ticket(hooks, customer)
            await until(lambda: not view(hooks, made.endpoint.id).enabled)
    reason = view(hooks, made.endpoint.id).disabled_reason
    assert reason is not None
    assert "5 days without a success" in reason


def view(runtime: Runtime, endpoint_id: int) -> Any:
    with runtime.transaction(write=False) as (session, _):
        return WebhookReader(session).endpoint(endpoint_id)


async def test_a_customers_endpoint_gets_only_their_events_and_never_an_internal_note(
    hooks: Runtime,
) -> None:
    async with receiving() as receiver:
        ann = make_user(hooks, name="Ann")
        bob = make_user(hooks, name="Bob")
        staff = make_user(hooks, name="Sam", staff=True)
        endpoint(hooks, receiver, owner_id=ann)
        mine = make_ticket(hooks, ann)
        make_ticket(hooks, bob)
        with system_work(hooks) as work:
            from ledgerdesk.db.models import User
            from ledgerdesk.tickets.service import TicketService

            author = work.session.get(User, staff)
            assert author is not None
            work.actor = Actor.staff(staff)
            TicketService(work).note(mine, author=author, content="internal", files=[])
        staff_reply(hooks, mine, staff, "Looking.")
        async with relaying(hooks):
            await receiver.wait_for(2)
            await asyncio.sleep(0.3)
    assert [d.event["type"] for d in receiver.verified] == ["ticket.created", "ticket.replied"]
    assert {d.event["data"]["customerId"] for d in receiver.verified} == {ann}


async def test_type_filters_with_wildcards(hooks: Runtime) -> None:
    async with receiving() as receiver:
        endpoint(hooks, receiver, event_types=["ticket.*"])
        customer = make_user(hooks, name="Ann")
        make_ticket(hooks, customer)
        staff = make_user(hooks, name="Sam", staff=True)
        ticket = make_ticket(hooks, customer)
        staff_reply(hooks, ticket, staff)
        async with relaying(hooks):
            await receiver.wait_for(3)
            await asyncio.sleep(0.3)
    assert [d.event["type"] for d in receiver.verified] == [
        "ticket.created",
        "ticket.created",
        "ticket.replied",
    ]


async def test_a_test_event_goes_to_its_endpoint_alone(hooks: Runtime) -> None:
    async with receiving() as one, receiving() as other:
        made = endpoint(hooks, one, event_types=["webhook.*"])
        endpoint(hooks, other, event_types=["webhook.*"])
        with system_work(hooks) as work:
            WebhookService.of(work, hooks.settings).send_test(made.endpoint.id)
        async with relaying(hooks):
            await one.wait_for(3)  # its creation, the other's, then the test
            await other.wait_for(1)
            await asyncio.sleep(0.3)
    assert [d.event["type"] for d in one.verified] == ["webhook.created"] * 2 + ["webhook.tested"]
    assert [d.event["type"] for d in other.verified] == ["webhook.created"]
    assert deliveries(hooks, made.endpoint.id)[-1].kind == "test"


async def test_replays_deliver_again_with_the_same_id_and_are_audited(hooks: Runtime) -> None:
    async with receiving() as receiver:
        made = endpoint(hooks, receiver, event_types=["ticket.*"])
        customer = make_user(hooks, name="Ann")
        tickets = [make_ticket(hooks, customer) for _ in range(3)]
        async with relaying(hooks):
            await receiver.wait_for(3)
            events = [e for e in recorded_events(hooks) if e.type == "ticket.created"]
            with system_work(hooks) as work:
                service = WebhookService.of(work, hooks.settings)
                assert service.replay(made.endpoint.id, event_id=events[0].id) == 1
            now = hooks.clock.timestamp()
            with system_work(hooks) as work:
                service = WebhookService.of(work, hooks.settings)
                assert service.replay(made.endpoint.id, since=now - 60, until=now) == 3
            await until(lambda: len(receiver.verified) == 7)
    assert len(tickets) == 3
    assert receiver.ids()[3:] == [str(events[0].id)] + [str(e.id) for e in events]
    replayed = [e for e in recorded_events(hooks) if e.type == "webhook.replayed"]
    assert [e.payload["deliveries"] for e in replayed] == [1, 3]
    kinds = [r.kind for r in deliveries(hooks, made.endpoint.id)]
    assert kinds == ["event"] * 3 + ["replay"] * 4


async def test_a_rotated_secret_signs_beside_the_new_one_for_the_grace_period(
    hooks: Runtime,
) -> None:
    async with receiving() as receiver:
        made = endpoint(hooks, receiver)
        with system_work(hooks) as work:
            rotated = WebhookService.of(work, hooks.settings).rotate_secret(made.endpoint.id)
        receiver.secrets.append(rotated.secret)  # both must verify every delivery
        make_user(hooks, name="Ann")
        async with relaying(hooks):
            await receiver.wait_for(1)
    assert not receiver.unverified
    assert len(receiver.verified[-1].headers["webhook-signature"].split()) == 2


async def test_a_name_that_resolves_to_a_refused_address_at_delivery_is_not_called(
    hooks: Runtime,
) -> None:
    """Checked at registration, and again at every delivery: DNS can change."""
    public = hooks.settings.with_overrides(webhook_allow_networks=())
    with system_work(hooks) as work:
        made = WebhookService.of(work, public, resolver=lambda *_: ["93.184.216.34"]).create(
            url="https://hooks.example.test/in", event_types=["customer.*"]
        )
    strict = Runtime.build(public)
    try:
        make_user(strict, name="Ann")
        async with relaying(strict, resolver=lambda *_: ["169.254.169.254"]):
            await until(lambda: attempts_of(strict, made.endpoint.id) >= 1)
    finally:
        strict.engine.dispose()
    row = deliveries(hooks, made.endpoint.id)[0]
    assert row.state == "pending"  # retried on the schedule: the name may be fixed
    assert row.last_error == (
        "refused: hooks.example.test resolves to 169.254.169.254 is a link-local address: "
        "webhooks go to public addresses only"
    )
    with hooks.transaction(write=False) as (session, _):
        tried = WebhookReader(session).attempts(row.id)[0]
    assert (tried.status, tried.address) == (None, None)


async def test_a_redirect_is_a_failure_and_is_not_followed(hooks: Runtime) -> None:
    def redirect(_: str, __: int) -> tuple[int, str, bytes]:
        return 307, "Location: http://169.254.169.254/latest/meta-data/\r\n", b""

    async with receiving(redirect) as receiver:
        made = endpoint(hooks, receiver)
        make_user(hooks, name="Ann")
        async with relaying(hooks):
            await until(lambda: state_of(hooks, made.endpoint.id) == "failed")
    assert len(receiver.requests) == len(FAST)
    row = deliveries(hooks, made.endpoint.id)[0]
    assert row.last_error == "answered 307: redirects are not followed"


async def test_delivery_starts_when_the_event_commits_not_at_the_next_poll(
    hooks: Runtime,
) -> None:
    async with receiving() as receiver:
        endpoint(hooks, receiver)
        async with relaying(hooks, poll=600.0):
            await asyncio.sleep(0.2)  # the relay is waiting for the next poll, 10 min away
            make_user(hooks, name="Ann")
            await receiver.wait_for(1, timeout=10)


def test_a_lease_that_ran_out_is_taken_over(hooks: Runtime) -> None:
    with system_work(hooks) as work:
        made = WebhookService.of(work, hooks.settings).create(
            url="http://127.0.0.1:9/", event_types=["customer.*"]
        )
    make_user(hooks, name="Ann")
    from ledgerdesk.webhooks.relay import fan_out

    with hooks.transaction(write=True) as (session, _):
        fan_out(session, 1000)

    def take(holder: str, now_ms: int) -> list[int]:
        with hooks.transaction(write=True) as (session, _):
            batches = claim(session, now_ms, holder=holder, timeout=3.0, limit=10, rotation_now=0)
        return [d.delivery_id for b in batches for d in b.deliveries]

    claimed = take("a", 1000)
    assert len(claimed) == 1
    assert take("b", 2000) == []  # a holds it
    assert take("b", 1000 + 3000 + 5_000 + 1) == claimed  # a's lease ran out
    with hooks.transaction(write=False) as (session, _):
        holder = session.scalar(
            select(WebhookEndpoint.holder).where(WebhookEndpoint.id == made.endpoint.id)
        )
    assert holder == "b"


def test_disabling_holds_pending_deliveries_and_enabling_releases_them(hooks: Runtime) -> None:
    with system_work(hooks) as work:
        made = WebhookService.of(work, hooks.settings).create(url="http://127.0.0.1:9/")
    with system_work(hooks) as work:
        WebhookService.of(work, hooks.settings).set_enabled(made.endpoint.id, False)
    from ledgerdesk.webhooks.relay import fan_out

    with hooks.transaction(write=True) as (session, _):
        session.execute(update(WebhookEndpoint).values(enabled=True))
        fan_out(session, 1000)  # the disabled event itself
        session.execute(update(WebhookEndpoint).values(enabled=False))
    with hooks.transaction(write=True) as (session, _):
        assert claim(session, 2000, holder="a", timeout=3, limit=10, rotation_now=0) == []
    with system_work(hooks) as work:
        WebhookService.of(work, hooks.settings).set_enabled(made.endpoint.id, True)
    with hooks.transaction(write=True) as (session, _):
        assert claim(session, 2000, holder="a", timeout=3, limit=10, rotation_now=0) != []


async def test_with_no_endpoint_the_relay_only_moves_its_place_now_and_then(
    hooks: Runtime,
) -> None:
    """No write per commit while nobody listens; a first endpoint starts at its making."""
    customer = make_user(hooks, name="Ann")
    for _ in range(3):
        make_ticket(hooks, customer)
    async with relaying(hooks) as relay:
        await until(lambda: cursor(hooks) == recorded_events(hooks)[-1].id)
        make_ticket(hooks, customer)
        await asyncio.sleep(0.3)
        assert cursor(hooks) < recorded_events(hooks)[-1].id  # not a write per commit
        async with receiving() as receiver:
            endpoint(hooks, receiver)
            make_ticket(hooks, customer, title="After")
            await receiver.wait_for(1)
            await until(lambda: relay.delivered == 1)
    assert [d.event["data"]["details"]["title"] for d in receiver.verified] == ["After"]


def cursor(runtime: Runtime) -> int:
    from ledgerdesk.db.models import WebhookCursor

    with runtime.transaction(write=False) as (session, _):
        return int(session.scalar(select(WebhookCursor.last_event_id)) or 0)
