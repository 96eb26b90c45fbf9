"""The audit trail: every change (the event log) and every failed or replayed write or
authentication (the audit log), never a secret."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ledgerdesk.cli.main import cli
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import AuditEvent
from ledgerdesk.events.log import EventRecord
from ledgerdesk.runtime import Runtime
from tests.conftest import CLIENT_ADDRESS
from tests.factories import make_customer, recorded_events
from tests.support import Caller, FrozenClock, assert_error, assert_success, call, json_attachment

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "LEDGERDESK_DATABASE_URL": settings.database_url,
        "LEDGERDESK_DATA_DIR": str(settings.data_dir),
    }


def events(runtime: Runtime) -> list[AuditEvent]:
    runtime.flush_audit()
    with unit_of_work(runtime.sessions, write=False) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def ticket_events(runtime: Runtime) -> list[EventRecord]:
    """The log's events about tickets (the callers' set-up is in it too)."""
    return [e for e in recorded_events(runtime) if e.type.startswith("ticket.")]


async def test_a_write_is_recorded_with_who_what_and_where(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    response = await client.post(
        "/api/rest/v2/administration",
        json=caller.body("createTicket", title="T", content="C"),
        headers={"X-Request-Id": "req-42"},
    )
    ticket_id = assert_success(response)["ticketId"]
    assert events(runtime) == []  # nothing failed
    (event,) = ticket_events(runtime)
    assert (event.door, event.type, event.actor_kind) == ("api", "ticket.created", "customer")
    assert event.actor_id == event.customer_id == caller.user_id
    assert event.key_id is not None
    assert event.client_address == CLIENT_ADDRESS
    assert event.subject_id == ticket_id
    assert event.request_id == "req-42"


async def test_reads_are_not_recorded(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    assert_success(await call(client, caller, "getTicketOverview"))
    assert events(runtime) == []
    assert ticket_events(runtime) == []


async def test_a_failed_write_is_recorded_with_its_error_code(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    assert_error(await call(client, caller, "closeTicket", ticketId=999999), 3001, 404)
    (event,) = events(runtime)
    assert (event.action, event.outcome, event.error_code) == ("closeTicket", "error", 3001)
    assert event.target_id is None
    assert ticket_events(runtime) == []


async def test_a_failed_authentication_is_recorded_without_the_key(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    wrong = Caller(caller.user_id, "Q" * 20)
    assert_error(await call(client, wrong, "getInvoiceIds"), 2001, 401)
    (event,) = events(runtime)
    assert (event.action, event.outcome, event.error_code) == ("getInvoiceIds", "error", 2001)
    assert event.user_id == caller.user_id
    assert event.key_id is None
    stored = json.dumps([str(getattr(event, c.key)) for c in AuditEvent.__table__.columns])
    assert "Q" * 20 not in stored


async def test_a_replayed_write_is_recorded_as_replayed(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    body = caller.body(
        "createTicket", title="T", content="C", attachments=[json_attachment("a", b"secret")]
    )
    for _ in range(2):
        assert_success(
            await client.post(
                "/api/rest/v2/administration", json=body, headers={"Idempotency-Key": "k1"}
            )
        )
    assert [e.outcome for e in events(runtime)] == ["replayed"]
    assert [e.type for e in ticket_events(runtime)] == ["ticket.created"]


async def test_the_audit_command_lists_events_newest_first(
    client: httpx.AsyncClient,
    caller: Caller,
    runtime: Runtime,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    other = make_customer(runtime, name="Other")
    clock.advance(1)
    assert_success(await call(client, caller, "createTicket", title="T", content="C"))
    clock.advance(1)
    assert_error(await call(client, Caller(other.user_id, "Z" * 20), "getTicket"), 2001, 401)
    runtime.flush_audit()
    env = cli_env(settings)
    result = CliRunner().invoke(cli, ["admin", "audit", "--json"], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["events"]
    assert [e["action"] for e in listed][:2] == ["getTicket", "ticket.created"]
    assert [e["log"] for e in listed][:2] == ["audit", "events"]
    only = CliRunner().invoke(
        cli, ["admin", "audit", "--user", str(other.user_id), "--json"], env=env
    )
    # The customer's own creation and key (the test's set-up), and the failed guess.
    assert [e["action"] for e in json.loads(only.output)["events"]] == [
        "getTicket",
        "api_key.created",
        "customer.created",
    ]
    future = CliRunner().invoke(cli, ["admin", "audit", "--since", "2099-01-01"], env=env)
    assert future.exit_code == 0
    assert "No audit events." in future.output
    bad = CliRunner().invoke(cli, ["admin", "audit", "--since", "yesterday"], env=env)
    assert bad.exit_code != 0


def test_admin_writes_are_recorded(runtime: Runtime, settings: Settings) -> None:
    env = cli_env(settings)
    runner = CliRunner()
    created = runner.invoke(cli, ["admin", "user", "create", "--name", "Ann", "--json"], env=env)
    user_id = json.loads(created.output)["userId"]
    key = runner.invoke(cli, ["admin", "key", "create", "--user", str(user_id), "--json"], env=env)
    secret = json.loads(key.output)["apiKey"]
    runner.invoke(cli, ["admin", "key", "revoke", str(json.loads(key.output)["keyId"])], env=env)
    recorded = [(e.door, e.actor_kind, e.type, e.customer_id) for e in recorded_events(runtime)]
    assert recorded == [
        ("cli", "system", "customer.created", user_id),
        ("cli", "system", "api_key.created", user_id),
        ("cli", "system", "api_key.revoked", user_id),
    ]
    listing = runner.invoke(cli, ["admin", "audit", "--json"], env=env).output
    assert secret not in listing


async def test_prune_removes_failures_before_a_day_and_keeps_the_rest(
    client: httpx.AsyncClient,
    caller: Caller,
    runtime: Runtime,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    clock.set("2026-11-01T10:00:00")
    assert_success(await call(client, caller, "createTicket", title="old", content="C"))
    assert_error(await call(client, caller, "closeTicket", ticketId=999999), 3001, 404)
    clock.set("2026-11-28T10:00:00")
    assert_error(await call(client, caller, "closeTicket", ticketId=999999), 3001, 404)
    runtime.flush_audit()
    runner = CliRunner()
    result = runner.invoke(
        cli, ["admin", "audit", "prune", "--before", "2026-11-15", "--json"], env=cli_env(settings)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"removed": 1}
    assert [e.created_at for e in events(runtime)] == [clock.now]
    assert [e.type for e in ticket_events(runtime)] == ["ticket.created"]  # the log stays
    missing = runner.invoke(cli, ["admin", "audit", "prune"], env=cli_env(settings))
    assert missing.exit_code != 0
