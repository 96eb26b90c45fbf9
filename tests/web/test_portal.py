"""The customer portal: their own invoices, tickets and API keys, and nobody else's."""

from __future__ import annotations

import re
from datetime import date

import pytest

from ledgerdesk.runtime import Runtime
from tests.factories import force_close, make_invoice, make_key, make_ticket
from tests.support import Caller, assert_error, assert_success, call
from tests.web.conftest import WebClient, make_person

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ann(runtime: Runtime, web: WebClient) -> tuple[int, WebClient]:
    user_id = make_person(runtime, "Ann", "ann@example.com")
    assert (await web.sign_in("ann@example.com")).status_code == 303
    return user_id, web


async def test_a_key_made_in_the_portal_works_on_the_api_until_revoked(
    ann: tuple[int, WebClient],
) -> None:
    user_id, web = ann
    made = await web.submit(
        "/account/keys", "/account/keys", {"categories": "administration", "note": "billing"}
    )
    shown = await web.follow(made)
    secret = re.search(r'id="new-key">(\w{20})<', shown.text)
    assert secret
    assert "shown only this once" in shown.text
    # Reloading the page shows the key no more, and makes no second key.
    reloaded = await web.get(made.headers["location"])
    assert secret.group(1) not in reloaded.text
    assert reloaded.text.count('action="/account/keys/') == 1
    caller = Caller(user_id, secret.group(1))
    assert assert_success(await call(web.http, caller, "getTicketOverview")) == {"tickets": []}
    listed = await web.get("/account/keys")
    assert secret.group(1) not in listed.text  # never shown again
    assert "billing" in listed.text
    assert "<td>1</td>" in listed.text  # its use count
    key_id = re.search(r'action="/account/keys/(\d+)/revoke"', listed.text)
    assert key_id
    revoked = await web.submit("/account/keys", f"/account/keys/{key_id.group(1)}/revoke", {})
    assert revoked.status_code == 303
    assert_error(await call(web.http, caller, "getTicketOverview"), 2001, 401)


async def test_a_key_form_with_bad_input_says_which_field(ann: tuple[int, WebClient]) -> None:
    _, web = ann
    refused = await web.submit(
        "/account/keys", "/account/keys", {"ip_ranges": "not-a-range", "expires": "2020-01-01"}
    )
    assert refused.status_code == 400
    assert 'id="e-ip_ranges"' in refused.text or 'id="e-expires"' in refused.text


async def test_another_customers_ticket_invoice_file_and_key_are_404(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    _, web = ann
    bob = make_person(runtime, "Bob", "bob@example.com")
    ticket_id = make_ticket(runtime, bob, title="Bob's secret ticket")
    invoice = make_invoice(runtime, bob, created_on=date(2026, 11, 1))
    key_id, bob_caller = make_key(runtime, bob)
    for path in (
        f"/account/tickets/{ticket_id}",
        f"/account/invoices/{invoice.id}",
        f"/account/tickets/{ticket_id}/attachments/1",
    ):
        shown = await web.get(path)
        assert shown.status_code == 404, path
        assert "Bob" not in shown.text
    token_page = "/account/keys"
    for action, data in (
        (f"/account/keys/{key_id}/revoke", {}),
        (f"/account/tickets/{ticket_id}/status", {"action": "close"}),
        (f"/account/tickets/{ticket_id}/reply", {"content": "mine now"}),
    ):
        refused = await web.submit(token_page, action, data)
        assert refused.status_code == 404, action
    assert assert_success(await call(web.http, bob_caller, "getTicket", ticketId=ticket_id))
    thread = assert_success(await call(web.http, bob_caller, "getTicket", ticketId=ticket_id))
    assert thread["thread"]["status"] == 1
    assert len(thread["replies"]) == 1


async def test_a_customer_creates_replies_closes_and_reopens_a_ticket(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    user_id, web = ann
    _, caller = make_key(runtime, user_id)
    created = await web.submit(
        "/account/tickets/new",
        "/account/tickets/new",
        {"title": "Need more RAM", "content": "Please add 64 GB.", "priority": "3"},
        files=[("files", ("dmesg.txt", b"oom-killer", "text/plain"))],
    )
    assert created.status_code == 303
    page = created.headers["location"].split("?")[0]
    ticket_id = int(page.rsplit("/", 1)[1])
    listed = assert_success(await call(web.http, caller, "getTicketOverview"))["tickets"]
    assert [(t["ticketId"], t["priorityId"]) for t in listed] == [(ticket_id, 3)]
    shown = await web.get(page)
    assert "dmesg.txt" in shown.text
    file_link = re.search(rf'href="({page}/attachments/\d+)" download', shown.text)
    assert file_link
    assert (await web.get(file_link.group(1))).content == b"oom-killer"

    closed = await web.submit(page, f"{page}/status", {"action": "close"})
    assert closed.status_code == 303
    replied = await web.submit(page, f"{page}/reply", {"content": "Still needed."})
    assert replied.status_code == 303
    thread = assert_success(await call(web.http, caller, "getTicket", ticketId=ticket_id))
    assert thread["thread"]["status"] == 1  # a reply opens a closed ticket again
    assert thread["replies"][-1]["content"] == "Still needed."

    force_close(runtime, ticket_id)
    again = await web.submit(page, f"{page}/status", {"action": "reopen"})
    assert again.status_code == 409
    assert "cannot be reopened" in again.text
    shown = await web.get(page)
    assert "takes no more replies" in shown.text
    assert "force-close" not in shown.text


async def test_a_new_ticket_with_bad_fields_is_shown_again_with_the_errors(
    ann: tuple[int, WebClient],
) -> None:
    _, web = ann
    refused = await web.submit(
        "/account/tickets/new",
        "/account/tickets/new",
        {"title": "", "content": "text kept", "priority": "9", "reference": "r" * 65},
    )
    assert refused.status_code == 400
    assert "text kept" in refused.text
    assert 'id="e-priority"' in refused.text or "Priority must be" in refused.text


async def test_the_portal_lists_invoices_with_exact_amounts(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    user_id, web = ann
    invoice = make_invoice(runtime, user_id, created_on=date(2026, 9, 1), amount_cents=1999)
    home = await web.get("/account/")
    assert invoice.number in home.text
    assert "overdue" in home.text
    details = await web.get(f"/account/invoices/{invoice.id}")
    assert "24.19" in details.text  # 19.99 + 21% VAT, rounded as on the invoice
    assert "4.20" in details.text


async def test_too_many_files_get_a_clear_answer(ann: tuple[int, WebClient]) -> None:
    _, web = ann
    files = [("files", (f"f{n}.txt", b"x", "text/plain")) for n in range(11)]
    refused = await web.submit(
        "/account/tickets/new",
        "/account/tickets/new",
        {"title": "t", "content": "c"},
        files=files,
    )
    assert refused.status_code == 400
    assert "at most 10 files" in refused.text


async def test_a_customer_may_hold_only_so_many_keys(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    user_id, web = ann
    most = runtime.settings.max_keys_per_customer
    for _ in range(most):
        make_key(runtime, user_id)
    refused = await web.submit("/account/keys", "/account/keys", {"note": "one more"})
    assert refused.status_code == 400
    assert f"already has {most} usable API keys" in refused.text


async def test_the_key_form_reports_every_problem_at_once_and_keeps_what_was_typed(
    ann: tuple[int, WebClient],
) -> None:
    _, web = ann
    refused = await web.submit(
        "/account/keys",
        "/account/keys",
        {
            "categories": "Not-A-Category administration",
            "ip_ranges": "10.0.0.0/99",
            "expires": "31-01-2027",
            "note": "billing box",
        },
    )
    assert refused.status_code == 400
    for problem in ("is not a category name", "10.0.0.0/99", "must be a date such as"):
        assert problem in refused.text
    assert 'value="billing box"' in refused.text
    assert "Not-A-Category administration" in refused.text
    assert "10.0.0.0/99</textarea>" in refused.text


async def test_a_visitor_loading_the_keys_page_writes_nothing(
    runtime: Runtime, web: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    monkeypatch.setattr(runtime, "flush_key_usage", lambda: flushes.append(1) or 0)
    answer = await web.get("/account/keys")
    assert answer.status_code == 303
    assert flushes == []
