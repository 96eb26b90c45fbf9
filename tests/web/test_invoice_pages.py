"""Invoices in the console and the portal: the seller's page, an invoice's page with its
payments, credit notes and documents, and a customer's billing details."""

from __future__ import annotations

import pytest

from ledgerdesk.db.models import User
from ledgerdesk.invoices.pricing import line_from_text
from ledgerdesk.invoices.service import InvoiceService
from ledgerdesk.runtime import Runtime
from tests.factories import make_invoice, make_user, prepare_invoicing, system_work
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio

SELLER = {
    "name": "Hosting B.V.",
    "vat_id": "NL 8545.60.178 B01",
    "address_line": "Keizersgracht 1",
    "city": "Amsterdam",
    "postcode": "1015 CD",
    "country": "nl",
    "iban": "",
    "bic": "",
    "email": "",
    "electronic_address": "",
    "currency": "",
}


async def test_the_seller_is_set_in_the_console(staff: WebClient) -> None:
    unset = await staff.get("/console/seller")
    assert "Not set yet" in unset.text
    issue = await staff.get("/console/invoices")
    assert 'Set the <a href="/console/seller">seller\'s details</a> first' in issue.text
    refused = await staff.submit(
        "/console/seller", "/console/seller", {**SELLER, "vat_id": "NL123", "name": ""}
    )
    assert refused.status_code == 400
    assert "is not a valid VAT id for NL" in refused.text
    assert "Name</a> is required" in refused.text
    saved = await staff.submit("/console/seller", "/console/seller", SELLER)
    shown = await staff.follow(saved)
    assert "Seller&#39;s details saved." in shown.text
    assert 'value="NL854560178B01"' in shown.text  # compacted, as checked
    assert 'value="EUR"' in shown.text


async def test_an_invoice_is_paid_in_parts_and_credited_in_the_console(
    runtime: Runtime, staff: WebClient
) -> None:
    user_id = make_user(runtime, name="Ann")
    invoice = make_invoice(runtime, user_id, created_on=runtime.day_of(0), amount_cents=10000)
    page = f"/console/invoices/{invoice.id}"
    shown = await staff.get(page)
    assert shown.status_code == 200
    assert "Dell PowerEdge R410" in shown.text
    assert "121.00 EUR" in shown.text
    too_much = await staff.submit(page, f"{page}/payments", {"amount": "500"})
    assert too_much.status_code == 400
    assert "is more than the 121.00 EUR still due" in too_much.text
    paid = await staff.submit(page, f"{page}/payments", {"amount": "21.00", "method": "SEPA"})
    after = await staff.follow(paid)
    assert "Payment recorded: 100.00 EUR still due." in after.text
    assert "SEPA" in after.text
    wrong_rate = {
        "reason": "Outage",
        "line_description": ["Three days"],
        "line_quantity": ["3"],
        "line_unit_price": ["2.00"],
        "line_vat": ["9"],
    }
    refused = await staff.submit(page, f"{page}/credit", wrong_rate)
    assert refused.status_code == 400
    assert "has no line at that VAT rate" in refused.text
    credited = await staff.submit(page, f"{page}/credit", {**wrong_rate, "line_vat": ["21"]})
    note_page = await staff.follow(credited)
    assert "Credit note C26-0000001" in note_page.text
    assert f'href="/console/invoices/{invoice.id}">{invoice.number}</a>' in note_page.text
    download = await staff.get(f"{page}/documents/pdf")
    assert download.headers["content-type"] == "application/pdf"
    assert download.content.startswith(b"%PDF-")
    assert (await staff.get(f"{page}/documents/docx")).status_code == 404


async def test_customers_read_their_invoices_and_documents_and_nobody_elses(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    user_id, web = ann
    mine = make_invoice(runtime, user_id, created_on=runtime.day_of(0))
    theirs = make_invoice(runtime, make_user(runtime, name="Bob"), created_on=runtime.day_of(0))
    page = await web.get(f"/account/invoices/{mine.id}")
    assert "Dell PowerEdge R410" in page.text
    assert f"/account/invoices/{mine.id}/documents/pdf" in page.text
    ubl = await web.get(f"/account/invoices/{mine.id}/documents/ubl")
    assert ubl.status_code == 200
    assert ubl.headers["content-type"] == "application/xml"
    assert f'filename="{mine.number}-ubl.xml"' in ubl.headers["content-disposition"]
    assert (await web.get(f"/account/invoices/{theirs.id}/documents/pdf")).status_code == 404
    assert (await web.get(f"/account/invoices/{theirs.id}")).status_code == 404


async def test_customers_keep_their_billing_details(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    user_id, web = ann
    refused = await web.submit(
        "/account/billing", "/account/billing", {"country": "DE", "vat_id": "DE1"}
    )
    assert refused.status_code == 400
    assert "is not a valid VAT id for DE" in refused.text
    saved = await web.submit(
        "/account/billing",
        "/account/billing",
        {"legal_name": "Ann GmbH", "country": "de", "vat_id": "DE136695976", "city": "Berlin"},
    )
    shown = await web.follow(saved)
    assert "Billing details saved." in shown.text
    assert 'value="DE136695976"' in shown.text
    prepare_invoicing(runtime, user_id)
    invoice = make_invoice(runtime, user_id, created_on=runtime.day_of(0))
    assert invoice.vat == 0  # a German business of a Dutch seller: reverse charge


async def test_the_credit_form_starts_from_the_invoices_first_line(
    runtime: Runtime, staff: WebClient
) -> None:
    user_id = make_user(runtime, name="Ann")
    prepare_invoicing(runtime, user_id)
    with system_work(runtime) as work:
        customer = work.session.get(User, user_id)
        assert customer is not None
        invoice = InvoiceService(work).issue(
            customer=customer,
            lines=[line_from_text("Course", "1", "450", "exempt")],
            created_on=runtime.day_of(0),
            pay_within_days=14,
            exemption_reason="Education",
        )
    page = await staff.get(f"/console/invoices/{invoice.id}")
    assert 'name="line_vat" value="exempt"' in page.text
    assert 'name="line_description" value="Course"' in page.text
