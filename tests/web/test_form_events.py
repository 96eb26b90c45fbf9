"""Every form of the console and the portal that changes something records exactly one
event of the right type, door and actor. The table lists every form route: a new one
that is in none of them fails here before it can write unrecorded (the API's actions
and the admin commands: tests/events/test_write_paths.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from starlette.routing import BaseRoute, Mount, Route

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.config import Settings
from ledgerdesk.db.models import Ticket, User
from ledgerdesk.events.log import EventRecord
from ledgerdesk.mail import receiving
from ledgerdesk.mail.addresses import MailAddresses
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.resets import PasswordResets
from ledgerdesk.mail.tags import Tags
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.saved import SavedReplies
from ledgerdesk.webhooks.service import WebhookService
from tests.conftest import make_client
from tests.events.test_write_paths import events_after, last_id
from tests.factories import (
    SELLER,
    make_invoice,
    make_key,
    make_ticket,
    make_user,
    prepare_invoicing,
    system_work,
)
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, csrf_of, make_person

pytestmark = pytest.mark.anyio


# -- the console and the portal ---------------------------------------------------------


@dataclass
class Site:
    runtime: Runtime
    clock: FrozenClock
    staff: WebClient  # signed in as Sam (staff)
    customer: WebClient  # signed in as Ann (a customer)
    anonymous: WebClient
    staff_id: int
    customer_id: int


Scenario = Callable[[Site], Awaitable[httpx.Response]]
Write = tuple[Scenario, str | tuple[str, ...], str, str]


async def _reply(site: Site, web: WebClient, base: str, suffix: str) -> httpx.Response:
    ticket_id = make_ticket(site.runtime, site.customer_id)
    page = f"{base}/tickets/{ticket_id}"
    return await web.submit(page, f"{page}/{suffix}", {"content": "Done."})


async def _reply_then(site: Site, then: str) -> httpx.Response:
    ticket_id = make_ticket(site.runtime, site.customer_id)
    page = f"/console/tickets/{ticket_id}"
    fields = {"content": "Done.", "then": then, "until": "2026-12-24T09:00"}
    return await site.staff.submit(page, f"{page}/reply", fields)


async def _merge(site: Site) -> httpx.Response:
    keep = make_ticket(site.runtime, site.customer_id)
    dup = make_ticket(site.runtime, site.customer_id)
    with site.runtime.transaction(write=False) as (session, _):
        target = session.get(Ticket, keep)
        assert target is not None
        code = target.code
    page = f"/console/tickets/{dup}"
    return await site.staff.submit(page, f"{page}/merge", {"into": str(code), "confirm": "yes"})


async def _workflow(site: Site, action: str) -> httpx.Response:
    ticket_id = make_ticket(site.runtime, site.customer_id)
    page = f"/console/tickets/{ticket_id}"
    fields = {
        "action": action,
        "assignee": str(site.staff_id),
        "priority": "4",
        "until": "2026-12-24T09:00",
        "tags": "Billing, outage",
    }
    return await site.staff.submit(page, f"{page}/workflow", fields)


async def _status(site: Site, web: WebClient, base: str, action: str) -> httpx.Response:
    ticket_id = make_ticket(site.runtime, site.customer_id)
    page = f"{base}/tickets/{ticket_id}"
    return await web.submit(page, f"{page}/status", {"action": action})


async def _signin(site: Site) -> httpx.Response:
    make_person(site.runtime, "Bob", "bob@example.com")
    return await site.anonymous.sign_in("bob@example.com")


async def _verify(site: Site) -> httpx.Response:
    user_id = make_person(site.runtime, "Tess", "tess@example.com", staff=True)
    secret = pyotp.random_base32()
    with system_work(site.runtime) as work:
        PeopleService.of(work).confirm_totp(
            user_id, secret, pyotp.TOTP(secret).at(site.clock.now), now=site.clock.now
        )
    signed = await site.anonymous.sign_in("tess@example.com")
    assert signed.headers["location"] == "/signin/verify"
    site.clock.advance(30)
    code = pyotp.TOTP(secret).at(site.clock.now)
    return await site.anonymous.submit("/signin/verify", "/signin/verify", {"code": code})


async def _password_link(site: Site) -> httpx.Response:
    user_id = make_user(site.runtime, name="Cleo")
    with system_work(site.runtime) as work:
        AccountService(work).update_user(user_id, email="cleo@example.com")
        secret = PeopleService.of(work).issue_link(user_id, "invite", now=work.now)
    page = f"/password/{secret}"
    fields = {"password": "a brand new password", "password_again": "a brand new password"}
    return await site.anonymous.submit(page, page, fields)


async def _reset_link(site: Site) -> httpx.Response:
    with system_work(site.runtime) as work:
        user = work.session.get(User, site.customer_id)
        assert user is not None
        page = f"/password/reset/{PasswordResets(work).link_token(user, work.now)}"
    fields = {"password": "a brand new password", "password_again": "a brand new password"}
    return await site.anonymous.submit(page, page, fields)


async def _new_key(site: Site, web: WebClient, page: str, action: str) -> httpx.Response:
    return await web.submit(page, action, {"categories": "", "ip_ranges": "", "note": "n"})


async def _revoke(site: Site, web: WebClient, page: str, prefix: str) -> httpx.Response:
    key_id, _ = make_key(site.runtime, site.customer_id)
    return await web.submit(page, f"{prefix}/keys/{key_id}/revoke", {})


HOOK_URL = "https://93.184.216.34/hooks"


def _endpoint(site: Site, base: str, *, enabled: bool = True) -> int:
    """An endpoint of the side's: provider-wide for the console, Ann's for the portal."""
    owner = site.customer_id if base == "/account" else None
    with system_work(site.runtime) as work:
        service = WebhookService.of(work, site.runtime.settings)
        endpoint_id = service.create(url=HOOK_URL, owner_id=owner).endpoint.id
        if not enabled:
            service.set_enabled(endpoint_id, False)
    return endpoint_id


async def _new_endpoint(site: Site, web: WebClient, base: str) -> httpx.Response:
    page = f"{base}/webhooks"
    return await web.submit(page, page, {"url": HOOK_URL, "event_types": "ticket.*", "note": ""})


async def _endpoint_action(site: Site, web: WebClient, base: str, action: str) -> httpx.Response:
    endpoint_id = _endpoint(site, base, enabled=action != "enable")
    page = f"{base}/webhooks/{endpoint_id}"
    return await web.submit(page, f"{page}/actions", {"action": action})


async def _replay(site: Site, web: WebClient, base: str) -> httpx.Response:
    endpoint_id = _endpoint(site, base)
    make_ticket(site.runtime, site.customer_id)
    page = f"{base}/webhooks/{endpoint_id}"
    event = str(last_id(site.runtime))
    return await web.submit(page, f"{page}/replay", {"event": event, "since": "", "until": ""})


async def _delete_endpoint(site: Site, web: WebClient, base: str) -> httpx.Response:
    page = f"{base}/webhooks/{_endpoint(site, base)}"
    return await web.submit(f"{page}/delete", f"{page}/delete", {})


def _webhook_writes(base: str, door: str, actor: str) -> dict[tuple[str, str], Write]:
    web: Callable[[Site], WebClient] = (
        (lambda s: s.staff) if base == "/console" else (lambda s: s.customer)
    )
    one = base + "/webhooks/{endpoint_id:int}"
    writes: dict[tuple[str, str], Write] = {
        (base + "/webhooks", ""): (
            lambda s: _new_endpoint(s, web(s), base),
            "webhook.created",
            door,
            actor,
        ),
        (one + "/replay", ""): (
            lambda s: _replay(s, web(s), base),
            "webhook.replayed",
            door,
            actor,
        ),
        (one + "/delete", ""): (
            lambda s: _delete_endpoint(s, web(s), base),
            "webhook.deleted",
            door,
            actor,
        ),
    }
    for action, kind in (
        ("enable", "webhook.enabled"),
        ("disable", "webhook.disabled"),
        ("rotate", "webhook.secret_rotated"),
        ("test", "webhook.tested"),
    ):
        writes[(one + "/actions", action)] = (
            lambda s, a=action: _endpoint_action(s, web(s), base, a),  # type: ignore[misc]
            kind,
            door,
            actor,
        )
    return writes


async def _change_password(site: Site, web: WebClient, page: str) -> httpx.Response:
    fields = {
        "action": "password",
        "current_password": PASSWORD,
        "new_password": "another long password",
        "new_password_again": "another long password",
    }
    return await web.submit(page, page, fields)


async def _totp_enable(site: Site, web: WebClient | None = None) -> httpx.Response:
    web = web or site.staff
    address = "/console/security" if web is site.staff else "/account/security"
    page = await web.get(address)
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', page.text)
    assert secret
    fields = {
        "csrf": csrf_of(page.text),
        "action": "totp-enable",
        "secret": secret.group(1),
        "code": pyotp.TOTP(secret.group(1)).at(site.clock.now),
    }
    return await web.http.post(address, data=fields)


async def _issue_invoice(site: Site) -> httpx.Response:
    prepare_invoicing(site.runtime, site.customer_id)
    fields: dict[str, str | list[str]] = {
        "customer": str(site.customer_id),
        "line_description": ["Server"],
        "line_quantity": ["1"],
        "line_unit_price": ["100.00"],
        "line_vat": ["21"],
        "pay_within_days": "30",
    }
    return await site.staff.submit("/console/invoices", "/console/invoices", fields)


async def _pay(site: Site) -> httpx.Response:
    invoice = make_invoice(site.runtime, site.customer_id, created_on=site.runtime.day_of(0))
    page = f"/console/invoices/{invoice.id}"
    return await site.staff.submit(page, f"{page}/payments", {"amount": "10.00"})


async def _credit(site: Site) -> httpx.Response:
    invoice = make_invoice(site.runtime, site.customer_id, created_on=site.runtime.day_of(0))
    page = f"/console/invoices/{invoice.id}"
    fields: dict[str, str | list[str]] = {
        "reason": "Outage",
        "line_description": ["Three days"],
        "line_quantity": ["3"],
        "line_unit_price": ["2.00"],
        "line_vat": ["21"],
    }
    return await site.staff.submit(page, f"{page}/credit", fields)


async def _mark_paid(site: Site) -> httpx.Response:
    invoice = make_invoice(site.runtime, site.customer_id, created_on=site.runtime.day_of(0))
    page = f"/console/invoices/{invoice.id}/paid"
    return await site.staff.submit(page, page, {})


def _seller_form() -> dict[str, str | list[str]]:
    return {name: value or "" for name, value in SELLER.items()}


async def _access(site: Site, action: str) -> httpx.Response:
    page = f"/console/customers/{site.customer_id}"
    if action == "enable":
        with system_work(site.runtime) as work:
            PeopleService.of(work).set_disabled(site.customer_id, True, now=work.now)
    return await site.staff.submit(page, f"{page}/access", {"action": action})


async def _new_ticket(site: Site) -> httpx.Response:
    fields = {"title": "Help", "content": "Please.", "reference": "", "priority": "2"}
    return await site.customer.submit("/account/tickets/new", "/account/tickets/new", fields)


def _received(site: Site, raw: bytes) -> int:
    writer = IncomingWriter(site.runtime.incoming_dir, 10_000_000, "mail")
    writer.write(raw)
    return receiving.take(
        site.runtime, writer.finish("mail.eml", "message/rfc822"), via="pipe"
    ).mail_id


async def _mail_action(site: Site, action: str) -> httpx.Response:
    fields = {"action": action}
    if action == "retry":
        mail_id = _received(site, b"Subject: no sender\n\nnobody\n")
    elif action == "join":
        ticket_id = make_ticket(site.runtime, site.customer_id)
        with site.runtime.transaction(write=False) as (session, _):
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            code = ticket.code
        mail_id = _received(
            site,
            f"From: bob@x.example\nSubject: [#{code}]\nMessage-ID: <j@x>\n\nMe too\n".encode(),
        )
        fields["ticket"] = str(code)
    else:
        mail_id = _received(site, b"From: eve@x.example\nSubject: Hi\nMessage-ID: <h@x>\n\nHi\n")
        fields["customer"] = str(site.customer_id)
    page = f"/console/mail/{mail_id}"
    return await site.staff.submit(page, f"{page}/actions", fields)


async def _address(site: Site, web: WebClient, page: str, action: str, user: str) -> httpx.Response:
    address = "bob@ann-corp.example"
    if action == "remove":
        with system_work(site.runtime) as work:
            MailAddresses(work).add(site.customer_id, address, confirmed=True)
    return await web.submit(page, user, {"action": action, "address": address})


async def _confirm_address(site: Site) -> httpx.Response:
    with system_work(site.runtime) as work:
        added = MailAddresses(work).add(site.customer_id, "bob@ann-corp.example", confirmed=False)
        tags = Tags(mail_key(work.session), "")
        token = tags.confirm_token(site.customer_id, added.added_at, added.address)
    page = f"/mail-address/{token}"
    return await site.anonymous.submit(page, page, {})


# (route, variant) -> (scenario, event type (or the types, in order, of a write that is
# two things at once), door, actor kind)
WEB_WRITES: dict[tuple[str, str], Write] = {
    ("/signin", ""): (_signin, "signin.succeeded", "portal", "customer"),
    ("/signin/verify", ""): (_verify, "signin.succeeded", "console", "staff"),
    ("/signout", ""): (
        lambda s: s.customer.submit("/account/", "/signout", {}),
        "signout.succeeded",
        "portal",
        "customer",
    ),
    ("/password/{token}", ""): (_password_link, "password.changed", "portal", "customer"),
    ("/password/forgot", ""): (
        lambda s: s.anonymous.submit(
            "/password/forgot", "/password/forgot", {"email": "ann@example.com"}
        ),
        "password.reset_requested",
        "portal",
        "visitor",
    ),
    ("/password/reset/{token}", ""): (_reset_link, "password.changed", "portal", "customer"),
    ("/console/tickets/{ticket_id:int}/reply", ""): (
        lambda s: _reply(s, s.staff, "/console", "reply"),
        "ticket.replied",
        "console",
        "staff",
    ),
    ("/console/tickets/{ticket_id:int}/reply", "close"): (
        lambda s: _reply_then(s, "close"),
        ("ticket.replied", "ticket.closed"),
        "console",
        "staff",
    ),
    ("/console/tickets/{ticket_id:int}/reply", "wait"): (
        lambda s: _reply_then(s, "wait"),
        ("ticket.replied", "ticket.pending"),
        "console",
        "staff",
    ),
    ("/console/tickets/new", ""): (
        lambda s: s.staff.submit(
            "/console/tickets/new",
            "/console/tickets/new",
            {
                "customer": str(s.customer_id),
                "title": "Planned maintenance",
                "content": "We will move your server tonight.",
                "priority": "2",
                "reference": "",
            },
        ),
        "ticket.created",
        "console",
        "staff",
    ),
    ("/console/tickets/{ticket_id:int}/note", ""): (
        lambda s: _reply(s, s.staff, "/console", "note"),
        "ticket.note_added",
        "console",
        "staff",
    ),
    ("/console/tickets/{ticket_id:int}/status", "close"): (
        lambda s: _status(s, s.staff, "/console", "close"),
        "ticket.closed",
        "console",
        "staff",
    ),
    ("/console/tickets/{ticket_id:int}/status", "force-close"): (
        lambda s: _status(s, s.staff, "/console", "force-close"),
        "ticket.closed",
        "console",
        "staff",
    ),
    ("/console/customers", ""): (
        lambda s: s.staff.submit(
            "/console/customers", "/console/customers", {"name": "Dora", "email": ""}
        ),
        "customer.created",
        "console",
        "staff",
    ),
    ("/console/customers/{user_id:int}/access", "disable"): (
        lambda s: _access(s, "disable"),
        "customer.disabled",
        "console",
        "staff",
    ),
    ("/console/customers/{user_id:int}/access", "enable"): (
        lambda s: _access(s, "enable"),
        "customer.enabled",
        "console",
        "staff",
    ),
    ("/console/customers/{user_id:int}/access", "reset"): (
        lambda s: _access(s, "reset"),
        "password.link_created",
        "console",
        "staff",
    ),
    ("/console/customers/{user_id:int}/details", ""): (
        lambda s: s.staff.submit(
            f"/console/customers/{s.customer_id}",
            f"/console/customers/{s.customer_id}/details",
            {"name": "Ann B.", "email": "ann@example.com"},
        ),
        "customer.updated",
        "console",
        "staff",
    ),
    ("/console/customers/{user_id:int}/keys", ""): (
        lambda s: _new_key(
            s,
            s.staff,
            f"/console/customers/{s.customer_id}",
            f"/console/customers/{s.customer_id}/keys",
        ),
        "api_key.created",
        "console",
        "staff",
    ),
    ("/console/keys/{key_id:int}/revoke", ""): (
        lambda s: _revoke(s, s.staff, f"/console/customers/{s.customer_id}", "/console"),
        "api_key.revoked",
        "console",
        "staff",
    ),
    ("/console/invoices", ""): (_issue_invoice, "invoice.issued", "console", "staff"),
    ("/console/invoices/{invoice_id:int}/paid", ""): (
        _mark_paid,
        ("payment.recorded", "invoice.paid"),
        "console",
        "staff",
    ),
    ("/console/invoices/{invoice_id:int}/payments", ""): (
        _pay,
        "payment.recorded",
        "console",
        "staff",
    ),
    ("/console/invoices/{invoice_id:int}/credit", ""): (
        _credit,
        "credit_note.issued",
        "console",
        "staff",
    ),
    ("/console/seller", ""): (
        lambda s: s.staff.submit("/console/seller", "/console/seller", _seller_form()),
        "seller.updated",
        "console",
        "staff",
    ),
    ("/account/billing", ""): (
        lambda s: s.customer.submit(
            "/account/billing", "/account/billing", {"country": "DE", "city": "Berlin"}
        ),
        "customer.updated",
        "portal",
        "customer",
    ),
    ("/console/security", "password"): (
        lambda s: _change_password(s, s.staff, "/console/security"),
        "password.changed",
        "console",
        "staff",
    ),
    ("/console/security", "mail-notify"): (
        lambda s: s.staff.submit(
            "/console/security",
            "/console/security",
            {"action": "mail-notify", "mail_notify": "own"},
        ),
        "staff.updated",
        "console",
        "staff",
    ),
    ("/console/security", "totp-enable"): (
        _totp_enable,
        "second_factor.enabled",
        "console",
        "staff",
    ),
    ("/account/tickets/new", ""): (_new_ticket, "ticket.created", "portal", "customer"),
    ("/account/tickets/{ticket_id:int}/reply", ""): (
        lambda s: _reply(s, s.customer, "/account", "reply"),
        "ticket.replied",
        "portal",
        "customer",
    ),
    ("/account/tickets/{ticket_id:int}/status", ""): (
        lambda s: _status(s, s.customer, "/account", "close"),
        "ticket.closed",
        "portal",
        "customer",
    ),
    ("/account/keys", ""): (
        lambda s: _new_key(s, s.customer, "/account/keys", "/account/keys"),
        "api_key.created",
        "portal",
        "customer",
    ),
    ("/account/keys/{key_id:int}/revoke", ""): (
        lambda s: _revoke(s, s.customer, "/account/keys", "/account"),
        "api_key.revoked",
        "portal",
        "customer",
    ),
    ("/account/security", "totp-enable"): (
        lambda s: _totp_enable(s, s.customer),
        "second_factor.enabled",
        "portal",
        "customer",
    ),
    ("/account/security", ""): (
        lambda s: _change_password(s, s.customer, "/account/security"),
        "password.changed",
        "portal",
        "customer",
    ),
}


async def _bulk(site: Site, action: str) -> httpx.Response:
    ticket_id = make_ticket(site.runtime, site.customer_id)
    fields = {
        "ticket": str(ticket_id),
        "action": action,
        "assignee": str(site.staff_id),
        "tag": "outage",
        "priority": "4",
        "back": "owner=mine&status=open",
    }
    return await site.staff.submit("/console/tickets", "/console/tickets/bulk", fields)


for _action, _kind in (
    ("take", "ticket.assigned"),
    ("assign", "ticket.assigned"),
    ("tag", "ticket.tagged"),
    ("close", "ticket.closed"),
    ("priority", "ticket.priority_changed"),
):
    WEB_WRITES[("/console/tickets/bulk", _action)] = (
        lambda s, a=_action: _bulk(s, a),  # type: ignore[misc]
        _kind,
        "console",
        "staff",
    )
for _action, _kind in (
    ("take", "ticket.assigned"),
    ("assign", "ticket.assigned"),
    ("priority", "ticket.priority_changed"),
    ("wait", "ticket.pending"),
    ("tags", "ticket.tagged"),
):
    WEB_WRITES[("/console/tickets/{ticket_id:int}/workflow", _action)] = (
        lambda s, a=_action: _workflow(s, a),  # type: ignore[misc]
        _kind,
        "console",
        "staff",
    )
for _action, _kind, _actor in (
    ("open", "ticket.created", "staff"),
    ("join", "ticket.replied", "staff"),
    ("retry", "mail.received", "staff"),
    ("dismiss", "mail.dismissed", "staff"),
):
    WEB_WRITES[("/console/mail/{mail_id:int}/actions", _action)] = (
        lambda s, a=_action: _mail_action(s, a),  # type: ignore[misc]
        _kind,
        "console",
        _actor,
    )
for _action in ("add", "remove"):
    _kind = "customer.address_added" if _action == "add" else "customer.address_removed"
    WEB_WRITES[("/console/customers/{user_id:int}/addresses", _action)] = (
        lambda s, a=_action: _address(  # type: ignore[misc]
            s,
            s.staff,
            f"/console/customers/{s.customer_id}",
            a,
            f"/console/customers/{s.customer_id}/addresses",
        ),
        _kind,
        "console",
        "staff",
    )
    WEB_WRITES[("/account/addresses", _action)] = (
        lambda s, a=_action: _address(  # type: ignore[misc]
            s, s.customer, "/account/addresses", a, "/account/addresses"
        ),
        _kind,
        "portal",
        "customer",
    )


async def _staff_access(site: Site, action: str) -> httpx.Response:
    member = make_person(site.runtime, "Tess", "tess@example.com", staff=True)
    if action in ("enable", "not-admin"):
        with system_work(site.runtime) as work:
            if action == "enable":
                PeopleService.of(work).set_disabled(member, True, now=work.now)
            else:
                AccountService(work).update_user(member, admin=True)
    return await site.staff.submit(
        "/console/staff", f"/console/staff/{member}/access", {"action": action}
    )


WEB_WRITES[("/console/staff", "")] = (
    lambda s: s.staff.submit(
        "/console/staff",
        "/console/staff",
        {"name": "Tess", "email": "tess@example.com", "admin": "yes"},
    ),
    ("staff.created", "password.link_created"),
    "console",
    "staff",
)
for _action, _kind in (
    ("disable", "staff.disabled"),
    ("enable", "staff.enabled"),
    ("admin", "staff.updated"),
    ("not-admin", "staff.updated"),
    ("reset", "password.link_created"),
):
    WEB_WRITES[("/console/staff/{user_id:int}/access", _action)] = (
        lambda s, a=_action: _staff_access(s, a),  # type: ignore[misc]
        _kind,
        "console",
        "staff",
    )


def _saved(site: Site) -> int:
    with system_work(site.runtime) as work:
        return SavedReplies(work).save(None, title="Rebooted", content="We rebooted it.").id


WEB_WRITES[("/console/tickets/{ticket_id:int}/merge", "")] = (
    _merge,
    ("ticket.closed", "ticket.merged"),
    "console",
    "staff",
)
WEB_WRITES[("/console/replies", "")] = (
    lambda s: s.staff.submit(
        "/console/replies", "/console/replies", {"title": "Thanks", "content": "Thank you!"}
    ),
    "saved_reply.created",
    "console",
    "staff",
)
WEB_WRITES[("/console/replies/{saved_id:int}", "")] = (
    lambda s: s.staff.submit(
        "/console/replies",
        f"/console/replies/{_saved(s)}",
        {"title": "Rebooted", "content": "We rebooted {ticket_code}."},
    ),
    "saved_reply.updated",
    "console",
    "staff",
)
WEB_WRITES[("/console/replies/{saved_id:int}/delete", "")] = (
    lambda s: s.staff.submit("/console/replies", f"/console/replies/{_saved(s)}/delete", {}),
    "saved_reply.deleted",
    "console",
    "staff",
)
WEB_WRITES[("/mail-address/{token}", "")] = (
    _confirm_address,
    "customer.address_confirmed",
    "portal",
    "customer",
)
WEB_WRITES |= _webhook_writes("/console", "console", "staff")
WEB_WRITES |= _webhook_writes("/account", "portal", "customer")


def form_routes(app: LedgerdeskApp) -> set[str]:
    found: set[str] = set()

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route) and route.methods and "POST" in route.methods:
                found.add(prefix + route.path)

    walk(list(app.site.routes), "")
    return found


# Forms that only keep the books (who is on a ticket's page: like a session's last use)
# and record no event; tests/web/test_live.py covers them.
BOOKKEEPING = {"/console/tickets/{ticket_id:int}/presence"}


def test_every_form_route_is_listed(app: LedgerdeskApp) -> None:
    assert form_routes(app) == {route for route, _ in WEB_WRITES} | BOOKKEEPING


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Mail set up, and mail from strangers held: the console's mail queue has forms."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        mail_from="Support <support@hosting.example>",
        mail_strangers="hold",
        mail_unproven="hold",
    )


@pytest.fixture
async def site(
    runtime: Runtime, clock: FrozenClock, app: LedgerdeskApp, web: WebClient, other_web: WebClient
) -> Site:

    staff_id = make_person(runtime, "Sam", "sam@example.com", staff=True, admin=True)
    customer_id = make_person(runtime, "Ann", "ann@example.com")
    assert (await web.sign_in("sam@example.com")).status_code == 303
    assert (await other_web.sign_in("ann@example.com")).status_code == 303
    anonymous = WebClient(make_client(app, "198.51.100.30"))
    return Site(runtime, clock, web, other_web, anonymous, staff_id, customer_id)


@pytest.mark.parametrize(("route", "variant"), sorted(WEB_WRITES))
async def test_a_form_records_one_event(site: Site, route: str, variant: str) -> None:
    scenario, kind, door, actor = WEB_WRITES[(route, variant)]
    before = last_id(site.runtime)
    response = await scenario(site)
    assert response.status_code == 303, response.text
    recorded = [e for e in events_after(site.runtime, before) if not _set_up(e)]
    assert [e.type for e in recorded] == ([kind] if isinstance(kind, str) else list(kind))
    for event in recorded:
        assert (event.door, event.actor_kind) == (door, actor)
        assert (event.actor_id is None) == (actor == "visitor")  # who asked is unknown
        assert event.client_address is not None


def _set_up(event: EventRecord) -> bool:
    """An event of the scenario's own preparation (made through the system's door, or a
    mail taken in for the console's mail queue)."""
    return event.door in ("system", "mail")
