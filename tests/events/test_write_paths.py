"""Every write any door can make records exactly one event of the right type, with the
right actor, door and subject. The tables below list every writing API action and every
admin command (the forms of the console and the portal: tests/web/test_form_events.py):
a new one that is in none of them fails here before it can write unrecorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.app import build_registry
from ledgerdesk.cli.main import cli
from ledgerdesk.events.log import EventLog, EventRecord
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import TicketService
from ledgerdesk.webhooks.service import WebhookService
from tests.conftest import CLIENT_ADDRESS
from tests.factories import (
    force_close,
    make_customer,
    make_invoice,
    make_key,
    make_ticket,
    make_user,
    system_work,
)
from tests.support import Caller, assert_success

pytestmark = pytest.mark.anyio


def last_id(runtime: Runtime) -> int:
    with runtime.transaction(write=False) as (session, _):
        return EventLog(session).last_id()


def events_after(runtime: Runtime, after: int) -> list[EventRecord]:
    with runtime.transaction(write=False) as (session, _):
        return EventLog(session).after(after, limit=1000)


def closed_ticket(runtime: Runtime, user_id: int) -> int:
    ticket_id = make_ticket(runtime, user_id)
    with system_work(runtime) as work:
        TicketService(work).close(ticket_id, user_id=user_id)
    return ticket_id


# -- the API ----------------------------------------------------------------------------

# action -> (event type, the parameters of a request that changes something)
API_WRITES: dict[str, tuple[str, Callable[[Runtime, Caller], dict[str, Any]]]] = {
    "createTicket": ("ticket.created", lambda rt, c: {"title": "T", "content": "C"}),
    "replyTicket": (
        "ticket.replied",
        lambda rt, c: {"ticketId": make_ticket(rt, c.user_id), "content": "More."},
    ),
    "closeTicket": ("ticket.closed", lambda rt, c: {"ticketId": make_ticket(rt, c.user_id)}),
    "reopenTicket": (
        "ticket.reopened",
        lambda rt, c: {"ticketId": closed_ticket(rt, c.user_id)},
    ),
}


def test_every_writing_action_is_listed() -> None:
    writers = {action.name for action in build_registry() if action.writes}
    assert writers == set(API_WRITES)


@pytest.mark.parametrize("action", sorted(API_WRITES))
async def test_an_api_write_records_one_event(
    action: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    kind, params_of = API_WRITES[action]
    params = params_of(runtime, caller)
    before = last_id(runtime)
    response = await client.post(
        "/api/rest/v2/administration",
        json=caller.body(action, **params),
        headers={"X-Request-Id": f"req-{action}"},
    )
    ticket_id = assert_success(response).get("ticketId", params.get("ticketId"))
    (event,) = events_after(runtime, before)
    assert (event.type, event.door, event.actor_kind) == (kind, "api", "customer")
    assert event.actor_id == event.customer_id == caller.user_id
    assert event.key_id is not None
    assert event.subject_id == (ticket_id or params["ticketId"])
    assert (event.request_id, event.client_address) == (f"req-{action}", CLIENT_ADDRESS)


async def test_a_write_that_changes_nothing_records_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    ticket_id = closed_ticket(runtime, caller.user_id)
    before = last_id(runtime)
    body = caller.body("closeTicket", ticketId=ticket_id)
    assert_success(await client.post("/api/rest/v2/administration", json=body))
    assert events_after(runtime, before) == []


async def test_a_refused_write_records_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    caller = make_customer(runtime)
    ticket_id = make_ticket(runtime, caller.user_id)
    force_close(runtime, ticket_id)
    before = last_id(runtime)
    body = caller.body("replyTicket", ticketId=ticket_id, content="Hello?")
    response = await client.post("/api/rest/v2/administration", json=body)
    assert response.json()["status"] == "Error"
    assert events_after(runtime, before) == []


# -- the admin CLI ----------------------------------------------------------------------

# Commands that read, or keep the house without changing anything of the domain (their
# writes, if any, are upkeep: migrations, pruning), or call the API as a customer (the
# customer CLI: its writes are the API's above).
CLI_READS = {
    "admin audit",
    "admin audit prune",
    "admin events",
    "admin invoice export",
    "admin invoice list",
    "admin invoice show",
    "admin seller show",
    "admin key list",
    "admin storage verify",
    # A backup reads; verify reads files; restore fills an empty database as it was
    # (its events come back with it: nothing new happened).
    "admin backup create",
    "admin backup verify",
    "admin backup restore",
    "admin ticket list",
    "admin ticket show",
    "admin user list",
    "admin webhook deliveries",
    "admin webhook list",
    "db prune",
    "db upgrade",
    "demo",
    "serve",
    "worker",
    "invoices download",
    "invoices list",
    "invoices show",
    "tickets close",
    "tickets create",
    "tickets download",
    "tickets list",
    "tickets reopen",
    "tickets reply",
    "tickets show",
}


@dataclass(frozen=True)
class Ids:
    customer: int
    staff: int
    ticket: int
    key: int
    invoice: int
    endpoint: int
    event: int


# command -> (its arguments, given the ids of what exists, and the event type; or the
# types, in order, of a write that is two things at once: a payment that settles)
CLI_WRITES: dict[str, tuple[Callable[[Ids], list[str]], str | tuple[str, ...]]] = {
    "admin user create": (lambda ids: ["--name", "Eve"], "customer.created"),
    "admin user update": (lambda ids: [str(ids.customer), "--name", "Ann C."], "customer.updated"),
    "admin user invite": (lambda ids: [str(ids.customer)], "password.link_created"),
    "admin user reset-password": (lambda ids: [str(ids.customer)], "password.link_created"),
    "admin user disable": (lambda ids: [str(ids.customer)], "customer.disabled"),
    "admin user enable": (lambda ids: [str(ids.customer)], "customer.enabled"),
    "admin key create": (lambda ids: ["--user", str(ids.customer)], "api_key.created"),
    "admin key revoke": (lambda ids: [str(ids.key)], "api_key.revoked"),
    "admin invoice create": (
        lambda ids: [
            "--user",
            str(ids.customer),
            "--title",
            "T",
            "--amount-excl-vat",
            "10",
            "--vat-perc",
            "21",
        ],
        "invoice.issued",
    ),
    "admin invoice mark-paid": (
        lambda ids: [str(ids.invoice)],
        ("payment.recorded", "invoice.paid"),
    ),
    "admin invoice pay": (lambda ids: [str(ids.invoice), "--amount", "5"], "payment.recorded"),
    "admin invoice credit": (
        lambda ids: [str(ids.invoice), "--reason", "Outage"],
        ("credit_note.issued", "invoice.paid"),
    ),
    "admin seller set": (lambda ids: ["--email", "invoices@hosting.example"], "seller.updated"),
    "admin ticket reply": (
        lambda ids: [str(ids.ticket), "--staff-user", str(ids.staff), "--content", "Hi."],
        "ticket.replied",
    ),
    "admin ticket force-close": (lambda ids: [str(ids.ticket)], "ticket.closed"),
    "admin webhook create": (lambda ids: ["--url", HOOK_URL], "webhook.created"),
    "admin webhook disable": (lambda ids: [str(ids.endpoint)], "webhook.disabled"),
    "admin webhook enable": (lambda ids: [str(ids.endpoint)], "webhook.enabled"),
    "admin webhook delete": (lambda ids: [str(ids.endpoint)], "webhook.deleted"),
    "admin webhook rotate-secret": (lambda ids: [str(ids.endpoint)], "webhook.secret_rotated"),
    "admin webhook replay": (
        lambda ids: [str(ids.endpoint), "--event", str(ids.event)],
        "webhook.replayed",
    ),
    "admin webhook test": (lambda ids: [str(ids.endpoint)], "webhook.tested"),
}
# A public address written as one: no name to resolve.
HOOK_URL = "https://93.184.216.34/hooks"


def cli_commands() -> set[str]:
    found: set[str] = set()

    def walk(command: click.Command, path: tuple[str, ...], context: click.Context) -> None:
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found.add(" ".join(path))
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, (*path, name), context)
        else:
            found.add(" ".join(path))

    with click.Context(cli) as context:
        walk(cli, (), context)
    return found


# Writes whose events depend on what they are given, tested where that is made.
CLI_WRITES_ELSEWHERE = {
    "mail receive": "tests/mail/test_receive_command.py",
}


def test_every_command_is_listed_as_a_write_or_not() -> None:
    assert not CLI_READS & set(CLI_WRITES)
    assert cli_commands() == CLI_READS | set(CLI_WRITES) | set(CLI_WRITES_ELSEWHERE)


@pytest.mark.parametrize("command", sorted(CLI_WRITES))
def test_an_admin_command_records_one_event(
    command: str, runtime: Runtime, database_url: str, tmp_path: Any
) -> None:
    customer = make_user(runtime, name="Ann")
    with system_work(runtime) as work:
        AccountService(work).update_user(customer, email="ann@example.com")
    if command == "admin user enable":
        with system_work(runtime) as work:
            PeopleService.of(work).set_disabled(customer, True, now=work.now)
    staff = make_user(runtime, name="Sam", staff=True)
    key, _ = make_key(runtime, customer)
    ticket = make_ticket(runtime, customer)
    invoice = make_invoice(runtime, customer, created_on=runtime.day_of(0)).id
    with system_work(runtime) as work:
        endpoint = WebhookService.of(work, runtime.settings).create(url=HOOK_URL).endpoint.id
    if command == "admin webhook enable":
        with system_work(runtime) as work:
            WebhookService.of(work, runtime.settings).set_enabled(endpoint, False)
    ids = Ids(customer, staff, ticket, key, invoice, endpoint, last_id(runtime))
    arguments_of, kind = CLI_WRITES[command]
    before = last_id(runtime)
    result = CliRunner().invoke(
        cli,
        [
            "--database-url",
            database_url,
            "--data-dir",
            str(tmp_path / "cli"),
            *command.split(),
            *arguments_of(ids),
        ],
    )
    assert result.exit_code == 0, result.output
    recorded = events_after(runtime, before)
    assert [event.type for event in recorded] == ([kind] if isinstance(kind, str) else list(kind))
    expected_actor = ("staff", staff) if command == "admin ticket reply" else ("system", None)
    for event in recorded:
        assert event.door == "cli"
        assert (event.actor_kind, event.actor_id) == expected_actor
