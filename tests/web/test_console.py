"""The staff console: the queue, a ticket's page, customers, invoices and keys; every
action lands where the API reads."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import ApiKey, Invoice
from ledgerdesk.runtime import Runtime
from tests.factories import (
    make_customer,
    make_invoice,
    make_ticket,
    prepare_invoicing,
    recorded_events,
)
from tests.support import FrozenClock, assert_error, assert_success, call
from tests.web.conftest import WebClient, csrf_of, make_person

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


async def test_a_staff_reply_with_two_files_reaches_the_customer_through_the_api(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id, title="Disk failing")
    page = f"/console/tickets/{ticket_id}"
    sent = await staff.submit(
        page,
        f"{page}/reply",
        {"content": "Replaced the disk; logs attached."},
        files=[
            ("files", ("smart.txt", b"SMART: PASSED", "text/plain")),
            ("files", ("rack.png", PNG, "image/png")),
        ],
    )
    assert "Reply sent with 2 attachment" in (await staff.follow(sent)).text
    thread = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
    reply = thread["replies"][-1]
    assert reply["by"] == "Sam Support"
    assert reply["content"] == "Replaced the disk; logs attached."
    files = {a["name"]: a for a in reply["attachments"]}
    assert sorted(files) == ["rack.png", "smart.txt"]
    download = await call(
        staff.http,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=files["rack.png"]["attachmentId"],
    )
    assert download.content == PNG
    shown = await staff.get(page)
    assert "Replaced the disk" in shown.text
    assert f"{page}/attachments/{files['rack.png']['attachmentId']}?inline=1" in shown.text
    preview = await staff.get(f"{page}/attachments/{files['rack.png']['attachmentId']}?inline=1")
    assert preview.content == PNG
    assert preview.headers["content-disposition"].startswith("inline;")
    assert preview.headers["content-security-policy"] == "sandbox"


async def test_an_internal_note_never_reaches_the_customer(
    runtime: Runtime, clock: FrozenClock, staff: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    caller = make_customer(runtime, "Bob")  # a customer with an API key
    ticket_id = make_ticket(runtime, caller.user_id)
    before = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
    clock.advance(60)
    page = f"/console/tickets/{ticket_id}"
    # A reply form sent with the old "internal" box is refused, never published.
    old_form = await staff.submit(
        page, f"{page}/reply", {"content": "Customer is on the watch list.", "internal": "1"}
    )
    assert old_form.status_code == 400
    noted = await staff.submit(
        page,
        f"{page}/note",
        {"content": "Customer is on the watch list."},
        files=[("files", ("notes.txt", b"secret notes", "text/plain"))],
    )
    assert noted.status_code == 303
    shown = await staff.get(page)
    assert "Customer is on the watch list." in shown.text
    assert "Internal note" in shown.text
    note_file = re.search(rf"{page}/attachments/(\d+)", shown.text)
    assert note_file
    after = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
    assert after == before  # not a reply, no file, not even a new time of last update
    assert "watch list" not in str(after)
    refused = await call(
        staff.http,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=int(note_file.group(1)),
    )
    assert_error(refused, 3001, 404)


async def test_a_refused_note_comes_back_as_a_note_and_sent_again_stays_one(
    runtime: Runtime, staff: WebClient
) -> None:
    """A note refused (blank, or a file over the limit) came back as the reply form with
    the box unticked: sent again, it reached the customer."""
    caller = make_customer(runtime, "Bob")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = f"/console/tickets/{ticket_id}"
    refused = await staff.submit(page, f"{page}/note", {"content": ""})
    assert refused.status_code == 400
    note_form = refused.text.split('aria-labelledby="h-note"')[1]
    assert 'id="e-note-content"' in note_form
    assert 'aria-labelledby="h-reply"' not in note_form
    token = csrf_of(refused.text)
    again = await staff.http.post(f"{page}/note", data={"csrf": token, "content": "Watch him."})
    assert again.status_code == 303
    thread = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
    assert "Watch him." not in str(thread)


async def test_force_close_and_mark_paid_are_asked_on_a_page_of_their_own(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Bob")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = await staff.get(f"/console/tickets/{ticket_id}")
    assert f'href="/console/tickets/{ticket_id}/force-close"' in page.text
    assert 'value="force-close"' not in page.text  # no button on the ticket's page does it
    asked = await staff.get(f"/console/tickets/{ticket_id}/force-close")
    assert "Force-close ticket #" in asked.text
    assert 'value="force-close"' in asked.text
    invoice = make_invoice(runtime, caller.user_id, created_on=date(2026, 11, 1))
    listed = await staff.get("/console/invoices")
    assert f'href="/console/invoices/{invoice.id}/paid"' in listed.text
    confirm = await staff.get(f"/console/invoices/{invoice.id}/paid")
    assert f"Mark invoice {invoice.number} paid?" in confirm.text
    assert "EUR" in confirm.text
    done = await staff.http.post(
        f"/console/invoices/{invoice.id}/paid", data={"csrf": csrf_of(confirm.text)}
    )
    assert done.status_code == 303


async def test_status_buttons_keep_their_places_whatever_the_state(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Bob")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = f"/console/tickets/{ticket_id}"

    def buttons(html: str) -> list[str]:
        actions = html.split('<div class="actions">')[1].split("</div>")[0]
        return re.findall(r">(Close|Reopen|Force-close…)<", actions)

    open_page = (await staff.get(page)).text
    await staff.submit(page, f"{page}/status", {"action": "close"})
    closed_page = (await staff.get(page)).text
    assert buttons(open_page) == buttons(closed_page) == ["Close", "Reopen", "Force-close…"]


async def test_close_force_close_and_reopen_from_the_console(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = f"/console/tickets/{ticket_id}"
    for action, status in (("close", 0), ("reopen", 1), ("force-close", 2), ("reopen", 1)):
        done = await staff.submit(page, f"{page}/status", {"action": action})
        assert done.status_code == 303, done.text
        ticket = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
        assert ticket["thread"]["status"] == status
    unknown = await staff.submit(page, f"{page}/status", {"action": "delete"})
    assert unknown.status_code == 400


async def test_a_reply_without_text_is_refused_next_to_the_field_and_keeps_nothing(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = f"/console/tickets/{ticket_id}"
    refused = await staff.submit(
        page,
        f"{page}/reply",
        {"content": "   "},
        files=[("files", ("a.txt", b"a", "text/plain"))],
    )
    assert refused.status_code == 400
    assert 'id="e-reply-content"' in refused.text
    thread = assert_success(await call(staff.http, caller, "getTicket", ticketId=ticket_id))
    assert len(thread["replies"]) == 1
    assert list((runtime.settings.data_dir / "attachments").glob("??/*")) == []


async def test_the_queue_filters_sorts_and_pages_without_repeats(
    runtime: Runtime, clock: FrozenClock, staff: WebClient
) -> None:
    ann = make_customer(runtime, "Ann")
    bob = make_customer(runtime, "Bob")
    made = []
    for number in range(120):
        clock.advance(10)
        owner = ann if number % 2 else bob
        made.append(
            make_ticket(
                runtime,
                owner.user_id,
                title=f"Ticket {number}" + (" about DNS" if number % 10 == 0 else ""),
                priority=1 + number % 4,
            )
        )
    first = await staff.get("/console/tickets")
    assert first.status_code == 200
    assert "Highest</span> 30" in first.text  # open by priority, at the top
    seen: list[int] = []
    page = "/console/tickets?status=open&sort=waiting"
    while page:
        shown = await staff.get(page)
        seen += [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', shown.text)]
        following = re.search(r'rel="next" href="([^"]+)"', shown.text)
        page = "/console/tickets" + following.group(1).replace("&amp;", "&") if following else ""
    assert seen == made  # longest waiting first, every ticket once

    seen = []
    page = "/console/tickets?sort=priority"
    while page:
        shown = await staff.get(page)
        seen += [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', shown.text)]
        following = re.search(r'rel="next" href="([^"]+)"', shown.text)
        page = "/console/tickets" + following.group(1).replace("&amp;", "&") if following else ""
    # Highest priority first, then longest waiting; every ticket once across pages.
    assert seen == sorted(made, key=lambda t: (-(1 + made.index(t) % 4), made.index(t)))

    dns = await staff.get("/console/tickets?q=dns&sort=waiting")
    found = [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', dns.text)]
    assert found == made[::10]
    mine = await staff.get(f"/console/tickets?customer={ann.user_id}&priority=2&status=all")
    found = [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', mine.text)]
    assert found == [t for n, t in enumerate(made) if n % 2 and n % 4 == 1]


async def test_bad_queue_parameters_get_a_clear_message(staff: WebClient) -> None:
    shown = await staff.get("/console/tickets?priority=9&customer=x&after=1.2&status=maybe")
    assert shown.status_code == 400
    for message in ("Priority must be", "Customer must be", "After is not", "Status must be"):
        assert message in shown.text


async def test_a_missing_or_absurd_ticket_is_a_404_page(staff: WebClient) -> None:
    for path in ("/console/tickets/424242", "/console/tickets/99999999999999999999999"):
        shown = await staff.get(path)
        assert shown.status_code == 404
        assert "<h1>Not found</h1>" in shown.text


async def test_customers_are_created_searched_disabled_and_enabled(
    runtime: Runtime, staff: WebClient, other_web: WebClient
) -> None:
    created = await staff.submit(
        "/console/customers",
        "/console/customers",
        {"name": "Hosting Co", "email": "ops@hosting.example"},
    )
    assert created.status_code == 303
    user_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[1])
    again = await staff.submit(
        "/console/customers",
        "/console/customers",
        {"name": "Copy Co", "email": "OPS@hosting.example"},
    )
    assert again.status_code == 400
    assert "Email is already the address of another user" in again.text
    found = await staff.get("/console/customers?q=hosting")
    assert "Hosting Co" in found.text
    assert "Copy Co" not in found.text

    # An invitation link made in the console works once.
    page = f"/console/customers/{user_id}"
    invited = await staff.follow(await staff.submit(page, f"{page}/access", {"action": "invite"}))
    link = re.search(r"http://127.0.0.1:8080(/password/[\w-]+)", invited.text)
    assert link
    await other_web.submit(
        link.group(1),
        link.group(1),
        {"password": "hosting co secret", "password_again": "hosting co secret"},
    )
    assert (await other_web.sign_in("ops@hosting.example", "hosting co secret")).status_code == 303

    # A new key works on the API until the customer is disabled.
    made = await staff.follow(
        await staff.submit(page, f"{page}/keys", {"categories": "administration"})
    )
    secret = re.search(r'<code class="key" id="new-key">(\w{20})</code>', made.text)
    assert secret
    body = {"userId": user_id, "apiKey": secret.group(1), "action": "getTicketOverview"}
    assert (await staff.http.post("/api/rest/v2/administration", json=body)).status_code == 200
    disabled = await staff.submit(page, f"{page}/access", {"action": "disable"})
    assert disabled.status_code == 303
    refused = await staff.http.post("/api/rest/v2/administration", json=body)
    assert_error(refused, 2001, 401)
    assert (await other_web.get("/account/")).status_code == 303  # signed out
    await staff.submit(page, f"{page}/access", {"action": "enable"})
    assert (await staff.http.post("/api/rest/v2/administration", json=body)).status_code == 200


async def test_keys_made_in_the_console_keep_their_scope_and_can_be_revoked(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    page = f"/console/customers/{caller.user_id}"
    bad = await staff.submit(
        page, f"{page}/keys", {"ip_ranges": "10.0.0.0/33", "expires": "tomorrow"}
    )
    assert bad.status_code == 400
    assert 'id="e-expires"' in bad.text
    made = await staff.follow(
        await staff.submit(
            page,
            f"{page}/keys",
            {"ip_ranges": "192.0.2.0/24", "note": "monitoring", "expires": "2030-01-31"},
        )
    )
    secret = re.search(r'id="new-key">(\w{20})<', made.text)
    assert secret
    with unit_of_work(runtime.sessions, write=False) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.note == "monitoring")).one()
        assert key.ip_ranges == ["192.0.2.0/24"]
        assert key.expires_on == date(2030, 1, 31)
    body = {"userId": caller.user_id, "apiKey": secret.group(1), "action": "getTicketOverview"}
    assert_error(await staff.http.post("/api/rest/v2/administration", json=body), 2003, 403)
    revoked = await staff.submit(page, f"/console/keys/{key.id}/revoke", {})
    assert f"Key {key.id} revoked" in (await staff.follow(revoked)).text
    assert_error(await staff.http.post("/api/rest/v2/administration", json=body), 2001, 401)


async def test_invoices_are_issued_with_the_cli_rules_and_marked_paid(
    runtime: Runtime, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    prepare_invoicing(runtime, caller.user_id)
    form: dict[str, str | list[str]] = {
        "customer": str(caller.user_id),
        "title": "Dedicated server, December",
        "line_description": ["Dedicated server", "Extra IPv4 address", ""],
        "line_quantity": ["1", "4", "1"],
        "line_unit_price": ["350.00001", "1.50", ""],
        "line_vat": ["21", "21", "21"],
        "pay_within_days": "14",
    }
    refused = await staff.submit("/console/invoices", "/console/invoices", form)
    assert refused.status_code == 400
    assert "line 1: the unit price has more than 4 decimals" in refused.text
    assert 'value="350.00001"' in refused.text  # what was typed stays in the form
    more = await staff.submit(
        "/console/invoices", "/console/invoices", {**form, "action": "add-line"}
    )
    assert more.status_code == 200
    assert more.text.count('name="line_description"') == 4  # the typed rows and one more
    fixed = {**form, "line_unit_price": ["350.00", "1.50", ""]}
    issued = await staff.submit("/console/invoices", "/console/invoices", fixed)
    shown = await staff.follow(issued)
    assert "430.76 EUR" in shown.text  # (350 + 6) + 21% VAT
    assert "Extra IPv4 address" in shown.text
    ids = assert_success(await call(staff.http, caller, "getInvoiceIds"))["invoiceIds"]
    (details,) = assert_success(
        await call(staff.http, caller, "getInvoiceDetails", invoiceId=ids[0])
    )["invoices"]
    assert details["number"].endswith("-0000001")
    assert details["amountNet"] == 430.76
    assert [line["amountExclVat"] for line in details["lines"]] == [350, 6]
    unpaid = await staff.get("/console/invoices")
    assert "Dedicated server, December" in unpaid.text
    paid = await staff.submit("/console/invoices", f"/console/invoices/{ids[0]}/paid", {})
    assert paid.status_code == 303
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.scalars(select(Invoice.paid_on)).one() is not None
    missing = await staff.submit(
        "/console/invoices", "/console/invoices", {**fixed, "customer": "999999"}
    )
    assert missing.status_code == 400
    assert "no customer has id 999999" in missing.text


async def test_the_dashboard_counts_what_waits(
    runtime: Runtime, clock: FrozenClock, staff: WebClient
) -> None:
    caller = make_customer(runtime, "Ann")
    oldest = make_ticket(runtime, caller.user_id, title="Oldest one", priority=4)
    clock.advance(3600)
    make_ticket(runtime, caller.user_id, title="Newer", priority=4)
    make_invoice(runtime, caller.user_id, created_on=date(2026, 9, 1), amount_cents=10000)
    make_invoice(runtime, caller.user_id, created_on=date(2026, 11, 20), amount_cents=20000)
    shown = await staff.get("/console/")
    assert shown.status_code == 200
    assert '<span class="number">2</span>' in shown.text
    assert f'href="/console/tickets/{oldest}"' in shown.text
    assert "2 invoices, 363.00" in shown.text  # unpaid, VAT included
    assert "1 invoices, 121.00" in shown.text  # overdue


async def test_console_writes_are_in_the_audit_trail(runtime: Runtime, staff: WebClient) -> None:
    caller = make_customer(runtime, "Ann")
    ticket_id = make_ticket(runtime, caller.user_id)
    page = f"/console/tickets/{ticket_id}"
    await staff.submit(page, f"{page}/reply", {"content": "Done."})
    event = recorded_events(runtime)[-1]
    assert (event.type, event.door, event.subject_id) == ("ticket.replied", "console", ticket_id)
    assert (event.actor_kind, event.customer_id) == ("staff", caller.user_id)
    assert event.payload["by"] == "staff"


async def test_one_search_box_finds_a_ticket_by_customer_number_or_words(
    runtime: Runtime, staff: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoe = make_customer(runtime, "Zoë Ådler")
    other = make_customer(runtime, "Max")
    mine = make_ticket(runtime, zoe.user_id, title="Reverse DNS", content="PTR for 192.0.2.7")
    closed = make_ticket(runtime, other.user_id, title="Old", content="PTR record missing")
    assert_success(await call(staff.http, other, "closeTicket", ticketId=closed))
    everywhere = await staff.get("/console/customers")
    assert 'action="/console/tickets" role="search"' in everywhere.text  # on every page
    found = await staff.get("/console/tickets?q=zoe+adler&status=all")
    assert [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', found.text)] == [mine]
    assert '<option value="best" selected>Best match</option>' in found.text
    open_only = await staff.get("/console/tickets?q=ptr")
    assert [int(i) for i in re.findall(r'href="/console/tickets/(\d+)"', open_only.text)] == [mine]
    nothing = await staff.get("/console/tickets?q=nowhere+at+all")
    assert "No ticket holds every word of" in nothing.text
    assert "search every ticket" in nothing.text
    assert "newest of them" not in open_only.text
    monkeypatch.setattr("ledgerdesk.web.console.queue.CANDIDATES", 1)
    capped = await staff.get("/console/tickets?q=ptr&status=all")
    assert "newest of them" in capped.text
    refused = await staff.get("/console/tickets?sort=best")
    assert refused.status_code == 400


async def test_the_open_counts_follow_every_change(runtime: Runtime, staff: WebClient) -> None:
    """Counted again whenever the event log moved (and only then)."""
    caller = make_customer(runtime, "Ann")
    make_ticket(runtime, caller.user_id, priority=4)
    assert "Highest</span> 1</a>" in (await staff.get("/console/tickets")).text
    second = make_ticket(runtime, caller.user_id, priority=4)
    assert "Highest</span> 2</a>" in (await staff.get("/console/tickets")).text
    assert_success(await call(staff.http, caller, "closeTicket", ticketId=second))
    assert "Highest</span> 1</a>" in (await staff.get("/console/tickets")).text
    dashboard = await staff.get("/console/")
    assert '<span class="number">1</span>' in dashboard.text
