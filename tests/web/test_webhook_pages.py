"""Webhooks in the console (every endpoint) and the portal (a customer's own): adding
one (its secret shown once), refusals, the delivery log per endpoint and per event, and
the dashboard's stopped endpoints."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from ledgerdesk.db.models import WebhookDelivery, WebhookEndpoint
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.relay import Batch, Due, Outcome, Policy, fan_out, record
from ledgerdesk.webhooks.service import WebhookService
from ledgerdesk.webhooks.transport import Attempt
from tests.factories import make_ticket, system_work
from tests.web.conftest import WebClient, make_person

pytestmark = pytest.mark.anyio

URL = "https://93.184.216.34/hooks"


async def test_staff_add_an_endpoint_and_see_its_secret_once(staff: WebClient) -> None:
    added = await staff.submit(
        "/console/webhooks",
        "/console/webhooks",
        {"url": URL, "event_types": "ticket.*, invoice.issued", "note": "provisioning"},
    )
    page = await staff.follow(added)
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', page.text)
    assert secret is not None
    assert "ticket.*, invoice.issued" in page.text
    again = await staff.get(added.headers["location"].split("?")[0])
    assert secret.group(1) not in again.text
    listed = await staff.get("/console/webhooks")
    assert URL in listed.text
    assert "every customer" in listed.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://93.184.216.34/"}, "must start with https://"),
        ({"url": "https://10.0.0.7/"}, "10.0.0.7 is a private address"),
        ({"url": "https://[::ffff:127.0.0.1]/"}, "a form of 127.0.0.1, a loopback address"),
        ({"url": URL, "event_types": "ticket.exploded"}, "is no event type"),
    ],
)
async def test_a_refused_endpoint_says_why(
    staff: WebClient, fields: dict[str, str], message: str
) -> None:
    refused = await staff.submit(
        "/console/webhooks", "/console/webhooks", {"event_types": "", "note": "", **fields}
    )
    assert refused.status_code == 400
    assert message in refused.text.replace("&#39;", "'")


async def test_customers_see_and_act_on_their_own_endpoints_only(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    ann_id, web = ann
    bob = make_person(runtime, "Bob", "bob@example.com")
    with system_work(runtime) as work:
        bobs = WebhookService.of(work, runtime.settings).create(url=URL, owner_id=bob)
    refused = await web.submit(
        "/account/webhooks", "/account/webhooks", {"url": URL, "event_types": "seller.*"}
    )
    assert refused.status_code == 400
    assert "no type you receive" in refused.text
    added = await web.submit(
        "/account/webhooks", "/account/webhooks", {"url": URL, "event_types": "ticket.*"}
    )
    assert added.status_code == 303
    listed = await web.get("/account/webhooks")
    assert listed.text.count(URL) == 1
    assert (await web.get(f"/account/webhooks/{bobs.endpoint.id}")).status_code == 404
    stolen = await web.submit(
        "/account/webhooks", f"/account/webhooks/{bobs.endpoint.id}/actions", {"action": "disable"}
    )
    assert stolen.status_code == 404
    assert ann_id != bob


async def test_the_delivery_log_shows_every_attempt_and_the_dashboard_a_stopped_endpoint(
    runtime: Runtime, staff: WebClient
) -> None:
    customer = make_person(runtime, "Ann", "ann@example.com")
    with system_work(runtime) as work:
        made = WebhookService.of(work, runtime.settings).create(url=URL, event_types=["ticket.*"])
    make_ticket(runtime, customer, title="Disk full")
    with runtime.transaction(write=True) as (session, _):
        fan_out(session, 1000)
        session.execute(update(WebhookEndpoint).values(holder="me"))
        session.execute(update(WebhookDelivery).values(holder="me"))
    page = await staff.get(f"/console/webhooks/{made.endpoint.id}")
    link = re.search(rf'href="(/console/webhooks/{made.endpoint.id}/deliveries/(\d+))"', page.text)
    assert link is not None
    delivery_id = int(link.group(2))
    event_id = int(re.search(r"deliveries/\d+\">(\d+) ticket.created", page.text).group(1))  # type: ignore[union-attr]
    due = Due(delivery_id, event_id, "event", 0)
    batch = Batch(made.endpoint.id, URL, ("whsec_x",), True, (due,), {}, 0)
    with runtime.work(*_system()) as work:
        gone = Attempt(410, 0.2, b"<h1>Gone</h1>", "answered 410", None)
        record(
            work,
            batch,
            [Outcome(due, gone, 1_000, "93.184.216.34")],
            holder="me",
            policy=Policy((0.0,), 5),
        )
    shown = await staff.get(link.group(1))
    assert "&lt;h1&gt;Gone&lt;/h1&gt;" in shown.text  # the answer, escaped
    assert "93.184.216.34" in shown.text
    assert '"type": "ticket.created"' in shown.text.replace("&#34;", '"')
    per_event = await staff.get(f"/console/webhooks/{made.endpoint.id}?event={event_id}")
    assert per_event.text.count("/deliveries/") == 1
    dashboard = await staff.get("/console/")
    assert "Webhook endpoints stopped" in dashboard.text
    assert "answered 410 Gone" in dashboard.text


def _system() -> tuple[object, object]:
    from ledgerdesk.events.work import Actor, Origin

    return Actor.SYSTEM, Origin("system")


async def test_a_customers_history_names_their_webhook_changes(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, web = ann
    added = await web.submit("/account/webhooks", "/account/webhooks", {"url": URL})
    endpoint = added.headers["location"].split("?")[0].rsplit("/", 1)[1]
    await web.submit(
        f"/account/webhooks/{endpoint}", f"/account/webhooks/{endpoint}/actions", {"action": "test"}
    )
    page = await staff.get(f"/console/customers/{ann_id}")
    assert f"Added webhook endpoint {endpoint}" in page.text
    assert f"Sent a test event to webhook endpoint {endpoint}" in page.text


async def test_a_customer_has_at_most_ten_endpoints(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    """Every event about them goes to each: their number bounds what one event sends."""
    _, web = ann
    for _ in range(10):
        added = await web.submit("/account/webhooks", "/account/webhooks", {"url": URL})
        assert added.status_code == 303
    refused = await web.submit("/account/webhooks", "/account/webhooks", {"url": URL})
    assert refused.status_code == 400
    assert "at most 10 endpoints; delete one first" in refused.text
