"""API keys: hashing, expiry, revocation, categories, IP ranges and usage (SPEC section 2)."""

from __future__ import annotations

import hashlib
from datetime import date
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from ledgerdesk.accounts.keys import KEY_ALPHABET, KEY_LENGTH
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings, parse_networks
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import ApiKey
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.factories import make_customer, make_key, make_user, system_work
from tests.support import Caller, FrozenClock, assert_error, assert_success, call

pytestmark = pytest.mark.anyio


def stored_key(runtime: Runtime, key_id: int) -> ApiKey:
    with unit_of_work(runtime.sessions, write=False) as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        return key


async def test_key_is_20_alphanumeric_characters_stored_only_as_hash(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    key_id, caller = make_key(runtime, user_id)
    assert len(caller.api_key) == KEY_LENGTH
    assert set(caller.api_key) <= set(KEY_ALPHABET)
    key = stored_key(runtime, key_id)
    assert key.key_hash == hashlib.sha256(caller.api_key.encode()).hexdigest()
    with runtime.engine.connect() as connection:
        dumped = repr(connection.execute(select(ApiKey.__table__)).all())
    assert caller.api_key not in dumped


async def test_keys_are_not_repeated(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    secrets = {make_key(runtime, user_id)[1].api_key for _ in range(20)}
    assert len(secrets) == 20


async def test_wrong_key_unknown_user_and_other_users_key_answer_alike(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    alice = make_customer(runtime, "Alice")
    bob = make_customer(runtime, "Bob")
    attempts = [
        Caller(alice.user_id, "x" * 20),
        Caller(999_999, alice.api_key),
        Caller(alice.user_id, bob.api_key),
        Caller(alice.user_id, alice.api_key[:-1]),
    ]
    bodies = []
    for attempt in attempts:
        response = await call(client, attempt, "getInvoiceIds")
        bodies.append(assert_error(response, 2001, 401))
    assert all(body == bodies[0] for body in bodies)


async def test_user_may_hold_several_keys(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user_id = make_user(runtime)
    _, first = make_key(runtime, user_id)
    _, second = make_key(runtime, user_id)
    assert_success(await call(client, first, "getInvoiceIds"))
    assert_success(await call(client, second, "getInvoiceIds"))


async def test_revoked_key_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user_id = make_user(runtime)
    key_id, caller = make_key(runtime, user_id)
    assert_success(await call(client, caller, "getInvoiceIds"))
    with system_work(runtime) as work:
        AccountService(work).revoke_key(key_id)
    assert_error(await call(client, caller, "getInvoiceIds"), 2001, 401)


async def test_staff_users_cannot_get_keys(runtime: Runtime) -> None:
    staff_id = make_user(runtime, name="Support Sam", staff=True)
    with pytest.raises(Exception, match="staff"):
        make_key(runtime, staff_id)


async def test_key_is_valid_through_its_expiry_date(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    clock.set("2026-11-30T23:59:00")
    caller = make_customer(runtime, expires_on=date(2026, 11, 30))
    assert_success(await call(client, caller, "getInvoiceIds"))
    clock.set("2026-12-01T00:00:01")
    assert_error(await call(client, caller, "getInvoiceIds"), 2001, 401)


async def test_expiry_follows_the_configured_time_zone(
    settings: Settings, clock: FrozenClock
) -> None:
    amsterdam = settings.with_overrides(timezone=ZoneInfo("Europe/Amsterdam"))
    app = create_app(amsterdam, clock=clock)
    try:
        runtime: Runtime = app.state.runtime
        clock.set("2026-11-30T22:30:00")  # 23:30 in Amsterdam: still the 30th
        caller = make_customer(runtime, expires_on=date(2026, 11, 30))
        client = make_client(app, "203.0.113.7")
        assert_success(await call(client, caller, "getInvoiceIds"))
        clock.set("2026-11-30T23:30:00")  # 00:30 on 1 December in Amsterdam, 23:30 UTC
        assert_error(await call(client, caller, "getInvoiceIds"), 2001, 401)
    finally:
        app.state.runtime.engine.dispose()


async def test_key_expiring_in_the_past_cannot_be_created(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    with pytest.raises(Exception, match="past"):
        make_key(runtime, user_id, expires_on=date(2020, 1, 1))


async def test_key_limited_to_other_categories_is_2002(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime, categories=["dedicated", "gameserver"])
    assert_error(await call(client, caller, "getInvoiceIds"), 2002, 403)


async def test_key_limited_to_administration_is_allowed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime, categories=["administration"])
    assert_success(await call(client, caller, "getInvoiceIds"))


@pytest.mark.parametrize(
    ("ranges", "address", "allowed"),
    [
        (["203.0.113.0/24"], "203.0.113.7", True),
        (["198.51.100.0/24"], "203.0.113.7", False),
        (["198.51.100.0/24", "203.0.113.7/32"], "203.0.113.7", True),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["203.0.113.0/24"], "::ffff:203.0.113.9", True),
        (["203.0.113.0/24"], "2001:db8::1", False),
    ],
)
async def test_ip_ranges_limit_where_a_key_may_be_used(
    app: LedgerdeskApp, runtime: Runtime, ranges: list[str], address: str, allowed: bool
) -> None:
    caller = make_customer(runtime, ip_ranges=ranges)
    response = await call(make_client(app, address), caller, "getInvoiceIds")
    if allowed:
        assert_success(response)
    else:
        assert_error(response, 2003, 403)


async def test_x_forwarded_for_is_ignored_from_untrusted_peers(
    app: LedgerdeskApp, runtime: Runtime
) -> None:
    caller = make_customer(runtime, ip_ranges=["198.51.100.0/24"])
    client = make_client(app, "203.0.113.7")
    response = await client.post(
        "/api/rest/v2/administration",
        json=caller.body("getInvoiceIds"),
        headers={"X-Forwarded-For": "198.51.100.5"},
    )
    assert_error(response, 2003, 403)


async def test_x_forwarded_for_is_believed_from_trusted_proxies(
    settings: Settings, clock: FrozenClock
) -> None:
    proxied = settings.with_overrides(trusted_proxies=parse_networks("10.0.0.0/8", "test"))
    app = create_app(proxied, clock=clock)
    try:
        caller = make_customer(app.state.runtime, ip_ranges=["198.51.100.0/24"])
        client = make_client(app, "10.1.2.3")
        # The left-most entry is whatever the client claimed; only the hop the proxy
        # itself saw (right-most untrusted) counts.
        allowed = await client.post(
            "/api/rest/v2/administration",
            json=caller.body("getInvoiceIds"),
            headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.5, 10.0.0.9"},
        )
        assert_success(allowed)
        spoofed = await client.post(
            "/api/rest/v2/administration",
            json=caller.body("getInvoiceIds"),
            headers={"X-Forwarded-For": "198.51.100.5, 192.0.2.1"},
        )
        assert_error(spoofed, 2003, 403)
    finally:
        app.state.runtime.engine.dispose()


async def test_use_count_and_last_used_are_recorded(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    user_id = make_user(runtime)
    key_id, caller = make_key(runtime, user_id)
    assert stored_key(runtime, key_id).use_count == 0
    for _ in range(3):
        assert_success(await call(client, caller, "getInvoiceIds"))
    clock.advance(60)
    assert_success(await call(client, caller, "getInvoiceIds"))
    runtime.flush_key_usage()
    key = stored_key(runtime, key_id)
    assert key.use_count == 4
    assert key.last_used_at == clock.timestamp()
    assert key.created_at == clock.timestamp() - 60


async def test_failed_authentication_is_not_counted_as_use(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id = make_user(runtime)
    key_id, caller = make_key(runtime, user_id)
    await call(client, Caller(user_id, "y" * 20), "getInvoiceIds")
    runtime.flush_key_usage()
    assert stored_key(runtime, key_id).use_count == 0
    assert caller.user_id == user_id


@pytest.mark.parametrize(
    "hop", ["198.51.100.5:51234", "[2001:db8::5]:443", "[2001:db8::5]", " 198.51.100.5 "]
)
async def test_a_hop_written_with_its_port_is_the_client(
    settings: Settings, clock: FrozenClock, hop: str
) -> None:
    """Some proxies write ``ip:port``; it was attributed to the proxy itself."""
    proxied = settings.with_overrides(trusted_proxies=parse_networks("10.0.0.0/8", "test"))
    app = create_app(proxied, clock=clock)
    try:
        caller = make_customer(app.state.runtime, ip_ranges=["198.51.100.0/24", "2001:db8::/64"])
        client = make_client(app, "10.1.2.3")
        allowed = await client.post(
            "/api/rest/v2/administration",
            json=caller.body("getInvoiceIds"),
            headers={"X-Forwarded-For": hop},
        )
        assert_success(allowed)
    finally:
        app.state.runtime.engine.dispose()
