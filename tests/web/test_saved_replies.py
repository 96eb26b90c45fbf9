"""Saved replies: written once in the console, inserted into a ticket's reply with the
customer, the ticket and the agent filled in; titles unique; changed and deleted."""

from __future__ import annotations

import re

import pytest

from ledgerdesk.db.models import Ticket
from ledgerdesk.runtime import Runtime
from tests.factories import make_ticket
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio

TEXT = (
    "Hello {customer_name},\n\nwe fixed #{ticket_code} ({ticket_title}).\n\n{agent_name} {unknown}"
)


async def test_a_saved_reply_is_inserted_with_its_placeholders_filled(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, _ = ann
    made = await staff.submit(
        "/console/replies", "/console/replies", {"title": "Fixed", "content": TEXT}
    )
    assert made.status_code == 303
    listing = (await staff.follow(made)).text
    assert "Fixed" in listing
    twice = await staff.submit(
        "/console/replies", "/console/replies", {"title": "fixed", "content": "again"}
    )
    assert twice.status_code == 400
    assert "is the title of another saved reply" in twice.text
    ticket_id = make_ticket(runtime, ann_id, title="Disk full")
    page = (await staff.get(f"/console/tickets/{ticket_id}")).text
    found = re.search(r'<select id="insert" name="insert"><option value="(\d+)">Fixed<', page)
    assert found
    saved_id = int(found.group(1))
    inserted = (await staff.get(f"/console/tickets/{ticket_id}?insert={saved_id}")).text
    with runtime.transaction(write=False) as (session, _):
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        code = ticket.code
    expected = f"Hello Ann,\n\nwe fixed #{code} (Disk full).\n\nSam Support {{unknown}}"
    assert expected in inserted
    # The customer's side has no such thing.
    _, customer = ann
    portal = await customer.get(f"/account/tickets/{ticket_id}?insert={saved_id}")
    assert "we fixed" not in portal.text
    assert (await staff.get(f"/console/tickets/{ticket_id}?insert=999999")).status_code == 404


async def test_saved_replies_are_changed_and_deleted(staff: WebClient) -> None:
    made = await staff.submit(
        "/console/replies", "/console/replies", {"title": "Reboot", "content": "Rebooted."}
    )
    assert made.status_code == 303
    listing = (await staff.get("/console/replies")).text
    saved_id = int(listing.split('href="/console/replies/', 1)[1].split('"', 1)[0])
    page = f"/console/replies/{saved_id}"
    assert "Rebooted." in (await staff.get(page)).text
    changed = await staff.submit(page, page, {"title": "Reboot", "content": "Rebooted it."})
    assert changed.status_code == 303
    assert "Rebooted it." in (await staff.get(page)).text
    empty = await staff.submit(page, page, {"title": "", "content": ""})
    assert empty.status_code == 400
    deleted = await staff.submit("/console/replies", f"{page}/delete", {})
    assert deleted.status_code == 303
    assert (await staff.get(page)).status_code == 404
