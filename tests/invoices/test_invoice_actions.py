"""getInvoiceIds and getInvoiceDetails (SPEC 3.1, 3.2) through HTTP."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import update

from ledgerdesk.db.models import Invoice
from ledgerdesk.runtime import Runtime
from tests.factories import credit_invoice, make_customer, make_invoice
from tests.support import Caller, FrozenClock, assert_error, assert_success, call, error_properties

pytestmark = pytest.mark.anyio

TODAY = date(2026, 11, 28)  # the clock fixture's date


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


async def invoice_ids(client: httpx.AsyncClient, caller: Caller, **params: object) -> list[int]:
    data = assert_success(await call(client, caller, "getInvoiceIds", **params))
    ids: list[int] = data["invoiceIds"]
    return ids


async def test_default_window_is_the_last_30_days_through_today(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    too_old = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=31))
    first_day = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=30))
    today = make_invoice(runtime, caller.user_id, created_on=TODAY)
    future = make_invoice(runtime, caller.user_id, created_on=TODAY + timedelta(days=1))
    ids = await invoice_ids(client, caller)
    assert ids == [first_day.id, today.id]
    assert too_old.id not in ids
    assert future.id not in ids


async def test_today_follows_the_clock(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, clock: FrozenClock
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=date(2026, 12, 5))
    assert await invoice_ids(client, caller) == []
    clock.set("2026-12-05T08:00:00")
    assert await invoice_ids(client, caller) == [invoice.id]


async def test_ids_are_oldest_first(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    newer = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=1))
    older = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=9))
    same_day = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=1))
    assert await invoice_ids(client, caller) == [older.id, newer.id, same_day.id]


async def test_date_bounds_are_inclusive(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    ids = [
        make_invoice(runtime, caller.user_id, created_on=date(2025, 3, day)).id
        for day in (1, 2, 3, 4)
    ]
    assert (
        await invoice_ids(client, caller, dateStart="02-03-2025", dateEnd="03-03-2025") == ids[1:3]
    )


async def test_only_a_start_date_runs_to_today(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    old = make_invoice(runtime, caller.user_id, created_on=date(2024, 1, 15))
    recent = make_invoice(runtime, caller.user_id, created_on=TODAY)
    assert await invoice_ids(client, caller, dateStart="01-01-2024") == [old.id, recent.id]


async def test_start_after_end_is_1003(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await call(
        client, caller, "getInvoiceIds", dateStart="10-10-2026", dateEnd="09-10-2026"
    )
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["dateStart"]


@pytest.mark.parametrize("bad", ["2026-10-01", "31-02-2026", "1-1-26", "01/01/2026"])
async def test_malformed_dates_are_1003(
    client: httpx.AsyncClient, caller: Caller, bad: str
) -> None:
    response = await call(client, caller, "getInvoiceIds", dateStart=bad)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["dateStart"]


@pytest.mark.parametrize(
    ("status", "expect"), [(-1, "all"), (0, "unpaid"), (1, "paid"), ("1", "paid")]
)
async def test_status_filters_paid_and_unpaid(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, status: object, expect: str
) -> None:
    unpaid = make_invoice(runtime, caller.user_id, created_on=TODAY - timedelta(days=2))
    paid = make_invoice(
        runtime, caller.user_id, created_on=TODAY - timedelta(days=1), paid_on=TODAY
    )
    expected = {"all": [unpaid.id, paid.id], "unpaid": [unpaid.id], "paid": [paid.id]}[expect]
    assert await invoice_ids(client, caller, status=status) == expected


@pytest.mark.parametrize("status", [2, -2, 10])
async def test_status_out_of_range_is_1003(
    client: httpx.AsyncClient, caller: Caller, status: int
) -> None:
    assert_error(await call(client, caller, "getInvoiceIds", status=status), 1003, 400)


async def test_other_customers_invoices_are_invisible(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    other = make_customer(runtime, "Someone Else")
    mine = make_invoice(runtime, caller.user_id, created_on=TODAY)
    theirs = make_invoice(runtime, other.user_id, created_on=TODAY)
    assert await invoice_ids(client, caller) == [mine.id]
    assert await invoice_ids(client, other) == [theirs.id]


async def test_details_has_every_field_with_exact_money(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    invoice = make_invoice(
        runtime,
        caller.user_id,
        created_on=date(2026, 11, 7),
        amount_cents=35000,
        vat_hundredths=2100,
        pay_within_days=30,
    )
    data = assert_success(await call(client, caller, "getInvoiceDetails", invoiceId=invoice.id))
    (details,) = data["invoices"]
    # i3D.net's fields first, exactly as before: a one-line invoice answers old clients
    # as it always did.
    old = {
        "invoiceId": invoice.id,
        "number": "F26-0000001",
        "title": "Dell PowerEdge R410 / EU: Rotterdam",
        "description": "Server Type: Dell PowerEdge R410\nLocation: EU: Rotterdam",
        "createdOn": "2026-11-07",
        "payBefore": "2026-12-07",
        "amountNet": 423.5,
        "vat": 73.5,
        "vatPerc": 21,
        "status": "unpaid",
    }
    assert list(details)[: len(old)] == list(old)
    assert {name: details[name] for name in old} == old
    # ledgerdesk's additions after them.
    assert {name: details[name] for name in list(details)[len(old) :]} == {
        "documentType": "invoice",
        "currency": "EUR",
        "amountExclVat": 350,
        "amountPaid": 0,
        "amountDue": 423.5,
        "correctsInvoiceId": None,
        "lines": [
            {
                "description": "Dell PowerEdge R410 / EU: Rotterdam",
                "quantity": 1,
                "unitPrice": 350,
                "vatCategory": "S",
                "vatPerc": 21,
                "amountExclVat": 350,
            }
        ],
    }


async def test_details_rounds_vat_half_up_and_shows_paid(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    invoice = make_invoice(
        runtime,
        caller.user_id,
        created_on=TODAY,
        amount_cents=1250,
        vat_hundredths=550,
        paid_on=TODAY,
    )
    data = assert_success(
        await call(client, caller, "getInvoiceDetails", invoiceId=str(invoice.id))
    )
    (details,) = data["invoices"]
    assert (details["amountNet"], details["vat"], details["vatPerc"]) == (13.19, 0.69, 5.5)
    assert details["status"] == "paid"


async def test_details_of_a_missing_invoice_is_3001(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    assert_error(await call(client, caller, "getInvoiceDetails", invoiceId=424242), 3001, 404)


async def test_details_of_another_customers_invoice_looks_missing(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    other = make_customer(runtime, "Someone Else")
    theirs = make_invoice(runtime, other.user_id, created_on=TODAY)
    foreign = await call(client, caller, "getInvoiceDetails", invoiceId=theirs.id)
    missing = await call(client, caller, "getInvoiceDetails", invoiceId=theirs.id + 1000)
    foreign_body = assert_error(foreign, 3001, 404)
    missing_body = assert_error(missing, 3001, 404)
    assert foreign_body["data"] == missing_body["data"]
    assert foreign_body["msg"].replace(str(theirs.id), "N") == missing_body["msg"].replace(
        str(theirs.id + 1000), "N"
    )


async def test_details_needs_an_invoice_id(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await call(client, caller, "getInvoiceDetails")
    assert_error(response, 1003, 400)
    assert response.json()["data"]["errors"] == [
        {"property": "invoiceId", "message": "is required"}
    ]


# -- credit notes, lines, documents (ledgerdesk's additions) ------------------------------


async def test_credit_notes_are_listed_only_when_asked_for(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=TODAY)
    note = credit_invoice(runtime, invoice.id, created_on=TODAY, reason="Cancelled")
    assert await invoice_ids(client, caller) == [invoice.id]  # as old clients expect
    assert await invoice_ids(client, caller, documentType="creditNote") == [note.id]
    assert await invoice_ids(client, caller, documentType="all") == [invoice.id, note.id]
    assert await invoice_ids(client, caller, documentType="all", status=0) == []
    data = assert_success(await call(client, caller, "getInvoiceDetails", invoiceId=note.id))
    (details,) = data["invoices"]
    assert (details["documentType"], details["correctsInvoiceId"], details["status"]) == (
        "creditNote",
        invoice.id,
        "paid",
    )
    (settled,) = assert_success(
        await call(client, caller, "getInvoiceDetails", invoiceId=invoice.id)
    )["invoices"]
    assert (settled["status"], settled["amountDue"], settled["amountPaid"]) == ("paid", 0, 0)
    response = await call(client, caller, "getInvoiceIds", documentType="receipt")
    assert_error(response, 1003, 400)
    assert "documentType" in error_properties(response)


async def test_a_documents_bytes_come_back_raw_or_in_the_envelope(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=TODAY)
    raw = await call(client, caller, "getInvoiceDocument", invoiceId=invoice.id, format="pdf")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/pdf"
    assert raw.content.startswith(b"%PDF-")
    assert f'filename="{invoice.number}.pdf"' in raw.headers["content-disposition"]
    wrapped = await call(
        client,
        caller,
        "getInvoiceDocument",
        invoiceId=invoice.id,
        format="ubl",
        encoding="base64",
    )
    document = assert_success(wrapped)["invoices"]
    assert (document["number"], document["format"], document["contentType"]) == (
        invoice.number,
        "ubl",
        "application/xml",
    )
    content = base64.b64decode(document["content"])
    assert len(content) == document["size"]
    assert b"<cbc:ID>" + invoice.number.encode() + b"</cbc:ID>" in content


async def test_another_customers_document_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    other = make_customer(runtime, "Someone Else")
    theirs = make_invoice(runtime, other.user_id, created_on=TODAY)
    response = await call(client, caller, "getInvoiceDocument", invoiceId=theirs.id, format="cii")
    assert_error(response, 3001, 404)
    bad = await call(client, caller, "getInvoiceDocument", invoiceId=theirs.id, format="docx")
    assert_error(bad, 1003, 400)


async def test_an_invoice_without_its_parties_has_no_document(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    invoice = make_invoice(runtime, caller.user_id, created_on=TODAY)
    with runtime.transaction(write=True) as (session, _):
        session.execute(update(Invoice).where(Invoice.id == invoice.id).values(parties=None))
    response = await call(client, caller, "getInvoiceDocument", invoiceId=invoice.id, format="pdf")
    assert_error(response, 3002, 409)
    assert "no legal document" in response.json()["msg"]
